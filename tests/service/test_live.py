"""Against a real ``redwood serve`` on 127.0.0.1: a bounded load test and kill -9 / restart durability."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.service.harness import Server, kill_restart_trial
from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}


def _sessions(c: httpx.Client, n: int = 2) -> list[str]:
    out = []
    for i in range(n):
        kind = "cucb" if i % 2 == 0 else "thompson"
        r = c.post(
            "/v1/sessions", json={"kind": kind, "n_arms": 12, "constraint": {"type": "top_k", "k": 3}, "seed": i}
        )
        r.raise_for_status()
        out.append(r.json()["id"])
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_bounded_load(policy_dir, tmp_path, workers):
    """4 clients x ~3 s of mixed decisions, selections and feedback: no 5xx, every feedback stored once (with
    two worker processes too, whose counts agree)."""
    server = Server(f"sqlite:///{tmp_path / 'load.db'}", policy_dir, ADMIN, extra=["--workers", str(workers)]).start()
    try:
        with httpx.Client(base_url=server.base, headers=H, timeout=30) as c:
            pid = c.post("/v1/policies", json={"path": "cap10"}).json()["id"]
            sids = _sessions(c)

        def client(i: int) -> tuple[list[int], int]:
            codes, fb, rng, end = [], 0, random.Random(i), time.monotonic() + 3.0
            with httpx.Client(base_url=server.base, headers=H, timeout=30) as c:
                for _ in range(400):
                    if time.monotonic() > end:
                        break
                    state = [rng.randrange(4) for _ in range(10)] + [rng.randrange(1, 21)]
                    codes.append(
                        c.post(f"/v1/policies/{pid}/decisions", json={"state": state, "selector": "auto"}).status_code
                    )
                    sid = rng.choice(sids)
                    sel = c.post(f"/v1/sessions/{sid}/select", json={})
                    codes.append(sel.status_code)
                    r = c.post(
                        f"/v1/sessions/{sid}/decisions/{sel.json()['id']}/feedback", json={"reward": rng.random()}
                    )
                    codes.append(r.status_code)
                    fb += r.status_code == 201
            return codes, fb

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(client, range(4)))
        codes = [c for r in results for c in r[0]]
        assert codes and all(c in (200, 201) for c in codes), sorted(set(codes))
        for _ in range(2 * workers):  # new connections: each may land on another worker
            with httpx.Client(base_url=server.base, headers=H, timeout=30) as c:
                states = [c.get(f"/v1/sessions/{sid}").json() for sid in sids]
            assert sum(s["feedback"] for s in states) == sum(r[1] for r in results)
            assert all(s["state"]["rounds"] == s["feedback"] for s in states)
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_loses_no_acknowledged_feedback(policy_dir, db_url, workers):
    """Stream feedback, SIGKILL mid-stream (every server process), restart: every acknowledged feedback is
    there, sessions restored."""
    if workers > 1 and not db_url.startswith("sqlite"):
        pytest.skip("two workers are exercised on SQLite; PostgreSQL runs the one-process case")
    server = Server(db_url, policy_dir, ADMIN, extra=["--workers", str(workers)]).start()
    rng = random.Random(7)
    try:
        with httpx.Client(base_url=server.base, headers=H, timeout=30) as c:
            sids = _sessions(c)
        total = 0
        for _ in range(3 if db_url.startswith("sqlite") else 1):  # bench/bench_service.py --kills 20 does more
            acked, lost, states = kill_restart_trial(server, H, sids, 0.6, rng)
            assert lost == 0, f"{lost} of {acked} acknowledged feedback lost"
            for s in states.values():
                assert s["state"]["rounds"] == s["feedback"]
            total += acked
        assert total > 0
    finally:
        server.stop()


def test_worker_socket_has_nodelay(monkeypatch):
    """With several workers the shared listening socket carries TCP_NODELAY (inherited by every accepted
    connection); without it each response waits ~40 ms for the client's delayed ACK."""
    import socket

    import uvicorn.supervisors

    from api.service import server

    seen = {}

    class Capture:
        def __init__(self, config, sockets, target=None) -> None:
            seen["nodelay"] = sockets[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            sockets[0].close()

        def run(self) -> None:
            seen["ran"] = True

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", Capture)
    server.run_workers(2, {"host": "127.0.0.1", "port": 0, "log_level": "warning"})
    assert seen == {"nodelay": 1, "ran": True}
