"""Run ``redwood serve`` as a subprocess on 127.0.0.1 and kill it mid-stream (used by tests and bench/)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``redwood serve`` in a subprocess; ``start`` waits until /v1/health answers."""

    def __init__(
        self, db: str, policy_dir: Path, admin_key: str, port: int | None = None, extra: list[str] | None = None
    ) -> None:
        self.db, self.policy_dir, self.admin_key = db, Path(policy_dir), admin_key
        self.port = port or free_port()
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> Server:
        env = os.environ | {
            "REDWOOD_SECRET": "harness-secret",
            "REDWOOD_BOOTSTRAP_KEY": self.admin_key,
            "PYTHONPATH": str(ROOT),
        }
        self.proc = proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db",
                self.db,
                "--policy-dir",
                str(self.policy_dir),
                *self.extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr is not None else ""
                raise RuntimeError(f"server exited: {err[-3000:]}")
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not become healthy in time")

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the server and its worker processes (a session of their own)

    def kill(self) -> None:
        """SIGKILL to every server process at once, as a crash of the machine's service would."""
        if self.proc is not None:
            self._signal_group(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def stream_feedback(
    base: str, headers: dict, session_ids: list[str], stop: threading.Event, acked: list[tuple[str, str, dict]]
) -> None:
    """Select + feedback in a loop over the sessions until ``stop`` or the server dies; every feedback
    acknowledged (201/200) is appended to ``acked`` as (session, decision, body)."""
    rng = random.Random(0)
    with httpx.Client(base_url=base, headers=headers, timeout=5.0) as c:
        while not stop.is_set():
            sid = rng.choice(session_ids)
            try:
                sel = c.post(f"/v1/sessions/{sid}/select", json={})
                if sel.status_code != 201:
                    continue
                d = sel.json()
                body = (
                    {"reward": round(rng.random(), 6)}
                    if rng.random() < 0.5
                    else {"rewards": [round(rng.random(), 6) if a else None for a in d["action"]]}
                )
                r = c.post(f"/v1/sessions/{sid}/decisions/{d['id']}/feedback", json=body)
                if r.status_code in (200, 201):
                    acked.append((sid, d["id"], body))
            except httpx.HTTPError:
                return


def kill_restart_trial(
    server: Server, headers: dict, session_ids: list[str], run_seconds: float, rng: random.Random, streams: int = 2
) -> tuple[int, int, dict]:
    """Stream feedback, SIGKILL the server after a random time, restart it and check every acknowledged
    feedback is stored (re-sending it must answer 200 "replayed"). Returns (acked, lost, session states)."""
    stop = threading.Event()
    acked: list[tuple[str, str, dict]] = []
    threads = [
        threading.Thread(target=stream_feedback, args=(server.base, headers, session_ids, stop, acked))
        for _ in range(streams)
    ]
    for t in threads:
        t.start()
    time.sleep(run_seconds * (0.5 + rng.random()))
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    server.start()
    with httpx.Client(base_url=server.base, headers=headers, timeout=60.0) as c:
        states = {sid: c.get(f"/v1/sessions/{sid}").json() for sid in session_ids}
        for sid, did, body in rng.sample(acked, min(10, len(acked))):  # the idempotent path, on a sample
            r = c.post(f"/v1/sessions/{sid}/decisions/{did}/feedback", json=body)
            if r.status_code != 200 or not r.json().get("replayed"):
                raise AssertionError(f"acknowledged feedback {did} not replayed: {r.status_code} {r.text}")
    return len(acked), len(acked) - stored_count(server.db, [a[1] for a in acked]), states


def stored_count(db_url: str, decision_ids: list[str]) -> int:
    """How many of ``decision_ids`` have a feedback row in the database."""
    import sqlalchemy as sa

    from api.service.db import feedback

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = 0
            for i in range(0, len(decision_ids), 500):
                chunk = decision_ids[i : i + 500]
                found += conn.execute(
                    sa.select(sa.func.count()).select_from(feedback).where(feedback.c.selection_id.in_(chunk))
                ).scalar_one()
    finally:
        engine.dispose()
    return found
