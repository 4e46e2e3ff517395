"""Jobs on Ray (``REDWOOD_JOB_EXECUTOR=ray``): a real training job registers a policy that decides, and a
running job is cancelled (its Ray task killed). One local Ray cluster, started and stopped by the server."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.service.job_harness import TINY_JOB
from api.service.job_specs import JobSettings
from tests.service.conftest import ADMIN

pytest.importorskip("ray")
H = {"X-API-Key": ADMIN}
TERMINAL = ("succeeded", "failed", "cancelled")


def _wait(c: TestClient, job_id: str, states=TERMINAL, timeout: float = 240.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        job = c.get(f"/v1/jobs/{job_id}", headers=H).json()
        if job["state"] in states or time.monotonic() > end:
            return job
        time.sleep(0.2)


def test_executor_setting_is_validated(monkeypatch):
    monkeypatch.setenv("REDWOOD_JOB_EXECUTOR", "slurm")
    with pytest.raises(ValueError, match="REDWOOD_JOB_EXECUTOR"):
        JobSettings.from_env()
    monkeypatch.setenv("REDWOOD_JOB_EXECUTOR", "local")
    monkeypatch.setenv("REDWOOD_JOB_RAY_ADDRESS", "auto")
    with pytest.raises(ValueError, match="REDWOOD_JOB_RAY_ADDRESS"):
        JobSettings.from_env()


def test_ray_job_trains_registers_and_cancels(app_factory, tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv("REDWOOD_JOB_EXECUTOR", "ray")
    monkeypatch.setenv("REDWOOD_JOB_WORKERS", "1")
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        assert ray.is_initialized()
        body = {**TINY_JOB, "config": {**TINY_JOB["config"], "episodes": 3}, "policy_name": "ray-cap4", "seed": 3}
        job = _wait(c, c.post("/v1/jobs", headers=H, json=body).json()["id"])
        assert job["state"] == "succeeded", job
        assert "Ray task" in job["log"] and "episode 3/3" in job["log"] and "registered policy" in job["log"]
        policy_id = job["result"]["policy_id"]
        r = c.post(f"/v1/policies/{policy_id}/decisions", headers=H, json={"state": [0, 1, 2, 3, 5]})
        assert r.status_code == 201 and sum(r.json()["action"]) <= 2

        long_job = {**TINY_JOB, "config": {**TINY_JOB["config"], "episodes": 4000}}
        job_id = c.post("/v1/jobs", headers=H, json=long_job).json()["id"]
        running = _wait(c, job_id, states=("running",), timeout=120)
        assert running["state"] == "running", running
        assert c.post(f"/v1/jobs/{job_id}:cancel", headers=H).status_code == 200
        job = _wait(c, job_id, timeout=60)
        assert job["state"] == "cancelled" and job["cancel_requested"], job
        assert not c.app.state.job_runner.children
    assert not ray.is_initialized()  # the server started the local cluster and stopped it
