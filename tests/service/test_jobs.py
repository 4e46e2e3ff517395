"""Training jobs over REST: validation, a real tiny training job, cancellation, recovery of jobs whose worker
died, and SIGKILL of every server process during training (no job lost or stuck)."""

from __future__ import annotations

import os
import random
import socket
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from api.service.job_harness import TINY_JOB, audit, kill_during_job, submit, wait_all
from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
TERMINAL = ("succeeded", "failed", "cancelled")


def _wait(c: TestClient, job_id: str, states=TERMINAL, timeout: float = 120.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        job = c.get(f"/v1/jobs/{job_id}", headers=H).json()
        if job["state"] in states or time.monotonic() > end:
            return job
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"epsiodes": 3}}, "config.epsiodes"),
        ({"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"episodes": 10**7}}, "config.episodes"),
        ({"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"lr": "fast"}}, "config.lr"),
        ({"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"hidden": [0]}}, "config.hidden"),
        ({"kind": "train", "scenario": "capacity", "n_arms": 5000}, "n_arms"),
        ({"kind": "train", "scenario": "capacity", "n_arms": 4, "horizon": 10**6}, "horizon"),
        ({"kind": "train", "scenario": "nope"}, "scenario"),
        ({"kind": "train", "scenario": "maze"}, "scenario"),
        ({"kind": "train", "scenario": "capacity", "instance": {"n_arms": "x"}, "n_arms": 3}, "n_arms"),
        ({"kind": "train", "scenario": "capacity", "instance": {"bogus": 1}}, None),
        ({"kind": "sweep", "config": {"bogus": 1}}, "config.bogus"),
        (
            {
                "kind": "sweep",
                "config": {"domains": ["capacity"], "seeds": [0], "n_arms": 4, "budget": 2, "dqn": {"episodes": 3}},
            },
            "config.dqn.episodes",
        ),
        ({"kind": "sweep", "config": {"domains": ["nope"], "n_arms": 4, "budget": 2}}, "config.domains"),
        ({"kind": "sweep", "config": {"seeds": list(range(60))}}, "config.seeds"),
        ({"kind": "sweep", "config": {"n_arms": 4, "budget": 2}, "scenario": "capacity"}, "scenario"),
        ({"kind": "evaluate"}, "kind"),
        ({"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"network": "bogus"}}, "config.network"),
        ({"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"prior": "bogus"}}, "config.prior"),
        (
            {"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"planner_candidates": 5}},
            "config.planner_candidates",
        ),
        (
            {"kind": "train", "scenario": "capacity", "n_arms": 4, "config": {"planner_candidates": ["nope"]}},
            "config.planner_candidates",
        ),
        ({"kind": "sweep", "config": {"n_arms": 4, "budget": 2, "methods": ["bogus"]}}, "config.methods"),
    ],
)
def test_submit_is_validated(app_factory, tmp_path, body, field):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        r = c.post("/v1/jobs", headers=H, json=body)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_input" and err["message"]
        if field is not None:
            assert err["field"] == field, err
        else:
            assert err["field"].startswith("instance"), err
        assert c.get("/v1/jobs", headers=H).json()["jobs"] == []


def test_job_routes_scopes_and_errors(app_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("REDWOOD_JOB_WORKERS", "0")  # nothing runs: the job stays queued
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        read = c.post("/v1/keys", headers=H, json={"name": "r", "scopes": ["read"]}).json()["key"]
        assert c.post("/v1/jobs", headers={"X-API-Key": read}, json=TINY_JOB).status_code == 403
        assert c.post("/v1/jobs", json=TINY_JOB).status_code == 401
        r = c.post("/v1/jobs", headers=H, json=TINY_JOB)
        assert r.status_code == 202 and r.json()["state"] == "queued" and r.json()["progress"] == 0
        job = r.json()
        assert job["spec"]["config"] == TINY_JOB["config"] and job["created_at"].endswith("Z")
        assert c.get(f"/v1/jobs/{job['id']}", headers={"X-API-Key": read}).json()["id"] == job["id"]
        listed = c.get("/v1/jobs", headers=H, params={"state": "queued"}).json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]] and listed[0]["log"] is None
        assert c.get("/v1/jobs", headers=H, params={"state": "running"}).json()["jobs"] == []
        for method, path in (("GET", "/v1/jobs/nope"), ("POST", "/v1/jobs/nope:cancel"), ("DELETE", "/v1/jobs/nope")):
            r = c.request(method, path, headers=H)
            assert r.status_code == 404 and r.json()["error"]["field"] == "job_id", r.text
        assert c.post(f"/v1/jobs/{job['id']}:cancel", headers={"X-API-Key": read}).status_code == 403
        r = c.post(f"/v1/jobs/{job['id']}:cancel", headers=H)
        assert r.status_code == 200 and r.json()["state"] == "cancelled" and r.json()["finished_at"]
        r = c.delete(f"/v1/jobs/{job['id']}", headers=H)
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_finished"


def test_train_job_registers_a_policy_that_decides(app_factory, db_url):
    with TestClient(app_factory(db_url)) as c:
        job = c.post(
            "/v1/jobs",
            headers=H,
            json={**TINY_JOB, "config": {**TINY_JOB["config"], "episodes": 3}, "policy_name": "tiny-cap4", "seed": 3},
        ).json()
        seen = set()
        end = time.monotonic() + 120
        while time.monotonic() < end:
            j = c.get(f"/v1/jobs/{job['id']}", headers=H).json()
            seen.add((j["state"], j["stage"]))
            if j["state"] in TERMINAL:
                break
            time.sleep(0.1)
        assert j["state"] == "succeeded", j
        assert j["progress"] == 1.0 and j["attempts"] == 1 and j["error"] is None and j["finished_at"]
        assert ("running", "starting") in seen or any(s == "running" for s, _ in seen)
        assert "episode 3/3" in j["log"] and "registered policy" in j["log"]
        result = j["result"]
        assert result["policy_name"] == "tiny-cap4" and result["training"]["episodes"] == 3
        policy = c.get(f"/v1/policies/{result['policy_id']}", headers=H).json()
        assert policy["policy_version"] == result["policy_version"] and policy["scenario"] == "capacity"
        r = c.post(f"/v1/policies/{result['policy_id']}/decisions", headers=H, json={"state": [0, 1, 2, 3, 5]})
        assert r.status_code == 201 and sum(r.json()["action"]) <= 2


def test_sweep_job_reports_per_task_and_summarises(app_factory, tmp_path):
    sweep = {
        "kind": "sweep",
        "config": {
            "domains": ["capacity"],
            "seeds": [0, 1],
            "n_arms": 3,
            "budget": 1,
            "horizon": 5,
            "train_episodes": 1,
            "eval_episodes": 2,
            "exact_max_arms": 0,
            "bound_time_limit": 10,
            "dqn": {"warm_start_epochs": 5, "warm_start_samples": 128, "snapshots": 0},
        },
    }
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        r = c.post("/v1/jobs", headers=H, json=sweep)
        assert r.status_code == 202 and r.json()["kind"] == "sweep"
        assert r.json()["spec"]["config"]["train_episodes"] == 1  # normalised: every SweepConfig field
        job = _wait(c, r.json()["id"], timeout=180)
        assert job["state"] == "succeeded", job
        assert job["result"]["tasks"] == 2 and "capacity" in job["result"]["summary"]["domains"]
        assert "task 2/2: capacity seed 1 done" in job["log"] and job["progress"] == 1.0


def test_cancel_running_and_queued(app_factory, tmp_path):
    long_job = {**TINY_JOB, "config": {**TINY_JOB["config"], "episodes": 4000}}
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        first = c.post("/v1/jobs", headers=H, json=long_job).json()["id"]
        second = c.post("/v1/jobs", headers=H, json=long_job).json()["id"]
        running = _wait(c, first, states=("running",), timeout=30)
        assert running["state"] == "running", running
        assert c.get(f"/v1/jobs/{second}", headers=H).json()["state"] == "queued"  # one job worker
        r = c.delete(f"/v1/jobs/{second}", headers=H)
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        r = c.post(f"/v1/jobs/{first}:cancel", headers=H)
        assert r.status_code == 200
        job = _wait(c, first, timeout=30)
        assert job["state"] == "cancelled" and job["cancel_requested"], job
        assert not c.app.state.job_runner.children  # the child was terminated and forgotten


def test_clean_shutdown_requeues_without_counting_the_attempt(app_factory, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with TestClient(app_factory(url)) as c:
        job_id = c.post("/v1/jobs", headers=H, json={**TINY_JOB, "config": {"episodes": 4000}}).json()["id"]
        assert _wait(c, job_id, states=("running",), timeout=30)["state"] == "running"
        end = time.monotonic() + 10
        while not c.app.state.job_runner.children and time.monotonic() < end:
            time.sleep(0.05)
        child = next(iter(c.app.state.job_runner.children.values())).proc
    assert child.poll() is not None  # stopped with the server
    monkeypatch.setenv("REDWOOD_JOB_WORKERS", "0")
    with TestClient(app_factory(url)) as c:
        job = c.get(f"/v1/jobs/{job_id}", headers=H).json()
        assert job["state"] == "queued" and job["attempts"] == 0 and "server shut down" in job["log"], job


def test_dead_workers_jobs_are_requeued_then_failed(app_factory, db_url, monkeypatch):
    """Rows left running by a process that is gone (same host) or whose lease expired come back to the queue
    with their attempt counted, and fail with the reason after the last attempt; a stale attempt can no longer
    write to the row."""
    monkeypatch.setenv("REDWOOD_JOB_WORKERS", "0")
    monkeypatch.setenv("REDWOOD_JOB_MAX_ATTEMPTS", "2")
    with TestClient(app_factory(db_url)) as c:
        svc = c.app.state.jobs
        from api.service.jobs import jobs

        ids = [c.post("/v1/jobs", headers=H, json=TINY_JOB).json()["id"] for _ in range(3)]
        dead = _dead_pid()
        with svc.db.main.begin() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == ids[0])
                .values(
                    state="running",
                    attempts=1,
                    worker_host=socket.gethostname()[:255],
                    worker_pid=dead,
                    lease_expires=time.time() + 3600,
                )
            )
            conn.execute(
                jobs.update()
                .where(jobs.c.id == ids[1])
                .values(
                    state="running",
                    attempts=2,
                    worker_host="elsewhere",
                    worker_pid=os.getpid(),
                    lease_expires=time.time() - 1,
                )
            )
            conn.execute(
                jobs.update()
                .where(jobs.c.id == ids[2])
                .values(
                    state="running", attempts=1, worker_host="elsewhere", worker_pid=1, lease_expires=time.time() + 3600
                )
            )
        assert svc.recover() == 2
        a, b, alive = (svc.get(i) for i in ids)
        assert a["state"] == "queued" and a["attempts"] == 1 and "gone" in a["log"]
        assert b["state"] == "failed" and "lease expired" in b["error"] and b["finished_at"]
        assert alive["state"] == "running"  # another host, lease still valid: left alone
        assert not svc.fenced(ids[0], 1, progress=0.5)  # re-queued: the old attempt is fenced off
        claimed = svc.claim(os.getpid())
        assert claimed is None  # job_workers = 0: this database runs none
        svc.limits.job_workers = 2
        claimed = svc.claim(os.getpid())
        assert claimed["id"] == ids[0] and claimed["attempts"] == 2 and claimed["state"] == "running"
        assert svc.fenced(ids[0], 2, log="still here", progress=0.5)
        assert not svc.fenced(ids[0], 1, progress=0.9)


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.slow
def test_sigkill_during_training_loses_no_job(tmp_path, monkeypatch):
    """Two server processes, SIGKILLed together (with the job's child) while tiny training jobs run, restarted:
    every job ends succeeded (or failed with a reason), none lost or stuck, one policy per succeeded job.
    bench/bench_job_kills.py does 20 kills."""
    from api.service.harness import Server

    monkeypatch.setenv("REDWOOD_JOB_LEASE_SECONDS", "6")
    monkeypatch.setenv("REDWOOD_JOB_WORKERS", "2")
    server = Server(f"sqlite:///{tmp_path / 'kill.db'}", tmp_path / "pol", ADMIN, extra=["--workers", "2"])
    (tmp_path / "pol").mkdir()
    server.start()
    rng = random.Random(11)
    try:
        hits = sum(kill_during_job(server, H, rng, max_delay=2.0) for _ in range(3))
        final = submit(server.base, H)  # and one left to finish undisturbed
        rows = wait_all(server.base, H, timeout=75)
        counts = audit(server.base, H, 4, rows)
        assert hits >= 2, counts
        assert counts["lost"] == 0 and counts["stuck"] == 0, counts
        assert counts["failed_without_reason"] == 0 and counts["succeeded_without_policy"] == 0, counts
        assert counts["duplicate_policies"] == 0, counts
        assert counts["succeeded"] + counts["failed"] == 4 and rows[final]["state"] == "succeeded", counts
        assert counts["retried"] >= 1, counts
        with httpx.Client(base_url=server.base, headers=H, timeout=30) as c:
            pid = rows[final]["result"]["policy_id"]
            assert c.post(f"/v1/policies/{pid}/decisions", json={"state": [0, 1, 2, 3, 5]}).status_code == 201
    finally:
        server.stop()
