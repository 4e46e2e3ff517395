"""The job runner: a thread per server process that recovers dead jobs, claims queued ones and runs each in a
child process (or a Ray task), renewing leases and handling cancellation. The protocol (fenced claims, leases,
re-queueing) is described in :mod:`api.service.jobs`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from api.service.job_ray import RayJobProcess, ensure_ray, shutdown_ray
from api.service.jobs import ROOT, JobService


@dataclass
class _Child:
    job_id: str
    attempt: int
    proc: subprocess.Popen | RayJobProcess
    renew_at: float
    stderr: Any = None

    def stderr_tail(self, n: int = 1500) -> str:
        if isinstance(self.proc, RayJobProcess):
            return self.proc.tail[-n:]
        try:
            self.stderr.seek(0)
            return self.stderr.read().decode(errors="replace")[-n:].strip()
        except (OSError, ValueError, AttributeError):
            return ""


class JobRunner:
    """A thread per server process: recovers dead jobs, claims queued ones and runs each in a child process
    (``python -m api.service.job_worker``; ``job_workers`` at most across the database), renewing their leases
    and handling cancellation."""

    def __init__(self, service: JobService, child_args: dict) -> None:
        self.service, self.child_args = service, child_args
        self.limits = service.limits
        self.pid = os.getpid()
        self.children: dict[str, _Child] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_recover = 0.0
        self._owns_ray = False

    def start(self) -> JobRunner:
        if self.limits.job_workers > 0 and self.limits.job_executor == "ray":
            self._owns_ray = ensure_ray(self.limits.job_ray_address, num_cpus=self.limits.job_workers)
        if self.limits.job_workers > 0:
            self._thread = threading.Thread(target=self._loop, name="redwood-jobs", daemon=True)
            self._thread.start()
        return self

    def stop(self, requeue: bool = True) -> None:
        """Stop claiming; terminate running children and put their jobs back in the queue (a clean shutdown
        does not count as an attempt)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for child in list(self.children.values()):
            _terminate(child.proc)
            _close(child)
            if requeue:
                with contextlib.suppress(Exception):
                    self.service.fenced(
                        child.job_id,
                        child.attempt,
                        log="server shut down: re-queued",
                        state="queued",
                        stage="queued",
                        progress=0.0,
                        worker_pid=None,
                        child_pid=None,
                        lease_expires=None,
                        attempts=child.attempt - 1,
                    )
        self.children.clear()
        if self._owns_ray:
            shutdown_ray()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the database may be briefly unavailable: try again next tick
                import logging

                logging.getLogger("redwood.service").exception("job runner tick failed")
            self._stop.wait(self.limits.job_poll_seconds)

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_recover:
            self.service.recover(own_pid=self.pid)
            self._next_recover = now + max(1.0, self.limits.job_lease_seconds / 5)
        for child in list(self.children.values()):
            self._watch(child)
        while len(self.children) < self.limits.job_workers and not self._stop.is_set():
            row = self.service.claim(self.pid)
            if row is None:
                break
            self._spawn(row)

    def _spawn(self, row: dict) -> None:
        args = {
            **self.child_args,
            "job_id": row["id"],
            "attempt": int(row["attempts"]),
            "spec": row["spec"],
            "threads": self.limits.job_threads,
        }
        if self.limits.job_executor == "ray":
            self._track(row, RayJobProcess(args), None, "Ray task")
            return
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the child)
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.service.job_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=str(ROOT),
        )
        assert proc.stdin is not None  # stdin=PIPE
        proc.stdin.write(json.dumps(args).encode())
        proc.stdin.close()
        self._track(row, proc, stderr, f"child process {proc.pid}")

    def _track(self, row: dict, proc: subprocess.Popen | RayJobProcess, stderr: Any, what: str) -> None:
        self.children[row["id"]] = _Child(
            row["id"], int(row["attempts"]), proc, time.monotonic() + self.limits.job_lease_seconds / 3, stderr
        )
        self.service.fenced(
            row["id"], int(row["attempts"]), child_pid=proc.pid, log=f"attempt {row['attempts']}: {what}"
        )

    def _watch(self, child: _Child) -> None:
        svc, job_id, attempt = self.service, child.job_id, child.attempt
        code = child.proc.poll()
        if code is not None:
            del self.children[job_id]
            tail = child.stderr_tail()
            _close(child)
            row = svc.row(job_id)
            if row["state"] == "running" and row["attempts"] == attempt:  # died without a final word
                if row["cancel_requested"]:
                    svc.fenced(
                        job_id, attempt, log="cancelled", state="cancelled", stage="cancelled", finished_at=time.time()
                    )
                elif attempt >= self.limits.job_max_attempts:
                    svc.fenced(
                        job_id,
                        attempt,
                        log=f"child exited with code {code}: {tail}",
                        state="failed",
                        stage="failed",
                        finished_at=time.time(),
                        error=f"worker process exited with code {code} on the last attempt: {tail[-500:]}",
                    )
                else:
                    svc.fenced(
                        job_id,
                        attempt,
                        log=f"child exited with code {code}: re-queued\n{tail}",
                        state="queued",
                        stage="queued",
                        progress=0.0,
                        worker_pid=None,
                        child_pid=None,
                        lease_expires=None,
                    )
            return
        row = svc.row(job_id)
        if row["state"] != "running" or row["attempts"] != attempt:  # lost the lease: someone else owns it
            _terminate(child.proc)
            _close(child)
            del self.children[job_id]
            return
        if row["cancel_requested"]:
            _terminate(child.proc)
            _close(child)
            del self.children[job_id]
            svc.fenced(
                job_id,
                attempt,
                log="cancelled: worker process terminated",
                state="cancelled",
                stage="cancelled",
                finished_at=time.time(),
            )
            return
        if time.monotonic() >= child.renew_at:
            if svc.fenced(job_id, attempt, lease_expires=time.time() + self.limits.job_lease_seconds):
                child.renew_at = time.monotonic() + self.limits.job_lease_seconds / 3
            else:
                _terminate(child.proc)
                _close(child)
                del self.children[job_id]


def _terminate(proc: subprocess.Popen | RayJobProcess) -> None:
    """SIGKILL: the child ignores SIGTERM / SIGINT (see :func:`child_main`) and keeps nothing worth a clean exit
    (an open database transaction rolls back)."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def _close(child: _Child) -> None:
    with contextlib.suppress(Exception):
        child.stderr.close()
