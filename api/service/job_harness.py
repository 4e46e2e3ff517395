"""Kill -9 a real ``redwood serve`` while it runs training jobs, restart it, and check no job is lost or stuck
(used by tests/service/test_jobs.py and bench/bench_job_kills.py)."""

from __future__ import annotations

import random
import time

import httpx

from api.service.harness import Server

TINY_JOB = {
    "kind": "train",
    "scenario": "capacity",
    "n_arms": 4,
    "budget": 2,
    "config": {"episodes": 2, "warm_start_epochs": 5, "warm_start_samples": 256, "snapshots": 0},
}
TERMINAL = ("succeeded", "failed", "cancelled")


def submit(base: str, headers: dict, spec: dict | None = None) -> str:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        r = c.post("/v1/jobs", json=spec or TINY_JOB)
        r.raise_for_status()
        return r.json()["id"]


def wait_running(base: str, headers: dict, timeout: float = 60.0) -> bool:
    """True once some job is running (its child process started)."""
    end = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
        while time.monotonic() < end:
            if c.get("/v1/jobs", params={"state": "running"}).json()["jobs"]:
                return True
            time.sleep(0.1)
    return False


def kill_during_job(server: Server, headers: dict, rng: random.Random, max_delay: float = 3.0) -> bool:
    """Submit a tiny job, wait until a job runs, SIGKILL every server process (and so the job's child) after a
    random delay, restart. Returns whether the kill hit a running job."""
    submit(server.base, headers)
    running = wait_running(server.base, headers)
    time.sleep(rng.random() * max_delay)
    server.kill()
    server.start()
    return running


def wait_all(base: str, headers: dict, job_ids: list[str] | None = None, timeout: float = 300.0) -> dict:
    """Wait until every job is finished; the final rows by id (jobs still unfinished at the timeout included)."""
    end = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        while True:
            rows = {j["id"]: j for j in c.get("/v1/jobs", params={"limit": 500}).json()["jobs"]}
            if all(j["state"] in TERMINAL for j in rows.values()) or time.monotonic() > end:
                return rows
            time.sleep(0.3)


def audit(base: str, headers: dict, submitted: int, rows: dict) -> dict:
    """Counts: submitted, stored (rows), succeeded, failed (each with an error), cancelled, stuck (unfinished),
    lost (submitted but not stored), succeeded without a registered policy, and the policies registered by jobs
    (to spot duplicates)."""
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        policies = c.get("/v1/policies").json()["policies"]
    by_path: dict[str, int] = {}
    for p in policies:
        by_path[p["path"]] = by_path.get(p["path"], 0) + 1
    ids = {p["id"] for p in policies}
    states = [j["state"] for j in rows.values()]
    ok = [j for j in rows.values() if j["state"] == "succeeded"]
    return {
        "submitted": submitted,
        "stored": len(rows),
        "lost": submitted - len(rows),
        "succeeded": states.count("succeeded"),
        "failed": states.count("failed"),
        "failed_without_reason": sum(1 for j in rows.values() if j["state"] == "failed" and not j["error"]),
        "cancelled": states.count("cancelled"),
        "stuck": sum(s not in TERMINAL for s in states),
        "succeeded_without_policy": sum(1 for j in ok if (j["result"] or {}).get("policy_id") not in ids),
        "duplicate_policies": sum(n - 1 for path, n in by_path.items() if path.startswith("jobs/") and n > 1),
        "retried": sum(1 for j in rows.values() if j["attempts"] > 1),
        "max_attempts_seen": max((j["attempts"] for j in rows.values()), default=0),
        "failure_reasons": sorted({(j["error"] or "")[:160] for j in rows.values() if j["state"] == "failed"}),
    }
