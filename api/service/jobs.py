"""Training and sweep jobs over REST: validated specs stored in the ``jobs`` table, run by local worker processes.

Life of a job: ``POST /v1/jobs`` validates the spec fully (422 naming the field) and stores a ``queued`` row.
Every server process runs a :class:`JobRunner` thread. A runner claims a queued job with one atomic, fenced
``UPDATE ... WHERE id = :id AND state = 'queued'`` (and only while fewer than ``job_workers`` jobs are running
in the whole database), which sets ``state = 'running'``, ``attempts = attempts + 1`` (the fencing token),
its host and pid and a lease. It then starts a ``spawn`` child process that trains (or sweeps), writes
progress and a log tail back to the row, saves the checkpoint under ``<policy_dir>/jobs/<job id>`` and
registers it as a policy. Every write of the child and the runner carries ``WHERE attempts = :attempt AND
state = 'running'``, so a worker that lost its lease can never overwrite a newer attempt.

The runner renews the lease while its child runs; a child whose server process dies exits on its own (it
watches its parent). Any runner (at start-up and every few seconds) re-queues ``running`` jobs whose lease
expired or whose server process is gone from this host (``attempts`` < ``job_max_attempts``), or marks them
failed with the reason; so a job is never lost or stuck, whatever gets killed. A retried training job first
looks for the checkpoint an earlier attempt may have saved (written atomically) and registers that instead
of training again, so a kill between saving and finishing never makes two policies.

Cancellation: a queued job is cancelled at once; a running one gets ``cancel_requested``, and the runner that
owns it terminates the child and marks it ``cancelled`` (within a poll interval, ~0.5 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api.service.db import ID, Database
from api.service.errors import ApiError
from api.service.job_ray import RayJobProcess, ensure_ray, shutdown_ray
from api.service.job_specs import (  # noqa: F401  (re-exported: the jobs API in one place)
    LOG_CHARS,
    STATES,
    TERMINAL,
    JobSettings,
    _tail,
    iso,
    public,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]


# a MetaData of its own: created by JobService (tolerating another worker process creating it at the same time),
# not by open_database's create_all, which worker processes starting together on PostgreSQL would race on
job_metadata = sa.MetaData()
jobs = sa.Table(
    # claimed with a fenced lease; ``attempts`` is the fencing token (see the module docstring)
    "jobs",
    job_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("stage", sa.String(50), nullable=False, server_default="queued"),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("log", sa.Text, nullable=False, server_default=""),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("worker_host", sa.String(255), nullable=True),
    sa.Column("worker_pid", sa.Integer, nullable=True),
    sa.Column("child_pid", sa.Integer, nullable=True),
    sa.Column("lease_expires", sa.Float, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
)


def _alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class JobService:
    """The jobs table: submit, read, list, cancel and recover. Safe to use from several processes."""

    def __init__(self, db: Database, limits: JobSettings) -> None:
        self.db, self.limits = db, limits
        try:
            job_metadata.create_all(db.main)
        except sa.exc.DBAPIError:  # created concurrently by another worker process
            if not sa.inspect(db.main).has_table("jobs"):
                raise
        self.host = socket.gethostname()[:255]

    def submit(self, spec: dict) -> dict:
        clean = validate(spec, self.limits)
        row = {
            "id": uuid.uuid4().hex,
            "kind": clean["kind"],
            "spec": clean,
            "state": "queued",
            "stage": "queued",
            "progress": 0.0,
            "log": _tail("", "queued"),
            "result": None,
            "error": None,
            "created_at": time.time(),
            "started_at": None,
            "finished_at": None,
            "attempts": 0,
            "worker_host": None,
            "worker_pid": None,
            "child_pid": None,
            "lease_expires": None,
            "cancel_requested": False,
        }
        with self.db.main.begin() as conn:
            conn.execute(jobs.insert().values(**row))
        return public(row)

    def row(self, job_id: str) -> dict:
        with self.db.read.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}", "job_id")
        return dict(row)

    def get(self, job_id: str) -> dict:
        return public(self.row(job_id))

    def list(self, state: str | None = None, limit: int = 50) -> list[dict]:
        q = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
        if state is not None:
            q = q.where(jobs.c.state == state)
        with self.db.read.connect() as conn:
            return [public(dict(r), with_log=False) for r in conn.execute(q).mappings().all()]

    def cancel(self, job_id: str, wait: float = 10.0) -> dict:
        """Queued: cancelled at once. Running: flagged; the owning runner terminates it (waits up to ``wait``
        seconds for that). Finished: 409."""
        now = time.time()
        with self.db.main.begin() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
            if row is None:
                raise ApiError(404, "not_found", f"no job {job_id!r}", "job_id")
            if row["state"] in TERMINAL:
                raise ApiError(409, "job_finished", f"job {job_id} already {row['state']}", "job_id")
            if row["state"] == "queued":
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.state == "queued")
                    .values(
                        state="cancelled",
                        stage="cancelled",
                        finished_at=now,
                        cancel_requested=True,
                        log=_tail(row["log"], "cancelled while queued"),
                    )
                )
            else:
                conn.execute(jobs.update().where(jobs.c.id == job_id).values(cancel_requested=True))
        end = time.monotonic() + wait
        while True:
            current = self.row(job_id)
            if current["state"] in TERMINAL or time.monotonic() > end:
                return public(current)
            time.sleep(0.1)

    # -------------------------------------------------------------------------------- claiming and leases
    def claim(self, pid: int) -> dict | None:
        """Atomically take the oldest queued job if fewer than ``job_workers`` run; None when there is none."""
        with self.db.read.connect() as conn:  # the common case, nothing queued, takes no write lock
            if conn.execute(sa.select(jobs.c.id).where(jobs.c.state == "queued").limit(1)).first() is None:
                return None
        now = time.time()
        with self.db.main.begin() as conn:
            running = conn.execute(
                sa.select(sa.func.count()).select_from(jobs).where(jobs.c.state == "running")
            ).scalar_one()
            if running >= self.limits.job_workers:
                return None
            row = (
                conn.execute(
                    sa.select(jobs.c.id, jobs.c.log)
                    .where(jobs.c.state == "queued")
                    .order_by(jobs.c.created_at, jobs.c.id)
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            done = conn.execute(
                jobs.update()
                .where(jobs.c.id == row["id"], jobs.c.state == "queued")
                .values(
                    state="running",
                    stage="starting",
                    attempts=jobs.c.attempts + 1,
                    started_at=now,
                    worker_host=self.host,
                    worker_pid=pid,
                    child_pid=None,
                    lease_expires=now + self.limits.job_lease_seconds,
                    log=_tail(row["log"], f"claimed by pid {pid} on {self.host}"),
                )
            ).rowcount
            if done != 1:
                return None
            return dict(conn.execute(sa.select(jobs).where(jobs.c.id == row["id"])).mappings().one())

    def fenced(self, job_id: str, attempt: int, log: str | None = None, **values) -> bool:
        """Update a running job only if it is still this ``attempt``; ``log`` is appended to the tail."""
        with self.db.main.begin() as conn:
            cond = (jobs.c.id == job_id, jobs.c.attempts == attempt, jobs.c.state == "running")
            if log is not None:
                old = conn.execute(sa.select(jobs.c.log).where(*cond)).scalar()
                if old is None:
                    return False
                values["log"] = _tail(old, log)
            return conn.execute(jobs.update().where(*cond).values(**values)).rowcount == 1

    def recover(self, own_pid: int | None = None) -> int:
        """Re-queue (or fail, after ``job_max_attempts``) running jobs whose worker is gone: lease expired, or
        its server process no longer exists on this host. Returns how many were recovered."""
        now = time.time()
        with self.db.read.connect() as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.state == "running")).mappings().all()
        n = 0
        for row in rows:
            pid_gone = (
                row["worker_host"] == self.host and row["worker_pid"] != own_pid and not _alive(row["worker_pid"])
            )
            expired = row["lease_expires"] is None or row["lease_expires"] < now
            if not (pid_gone or expired):
                continue
            why = f"worker pid {row['worker_pid']} gone" if pid_gone else "lease expired"
            if row["cancel_requested"]:
                values = {"state": "cancelled", "stage": "cancelled", "finished_at": now}
                line = f"{why}: cancelled (cancellation was requested)"
            elif row["attempts"] >= self.limits.job_max_attempts:
                line = f"{why} on attempt {row['attempts']} of {self.limits.job_max_attempts}: giving up"
                values = {"state": "failed", "stage": "failed", "finished_at": now, "error": line}
            else:
                values = {
                    "state": "queued",
                    "stage": "queued",
                    "progress": 0.0,
                    "worker_pid": None,
                    "child_pid": None,
                    "lease_expires": None,
                }
                line = f"{why} during attempt {row['attempts']}: re-queued"
            if self.fenced(row["id"], row["attempts"], log=line, **values):
                n += 1
        return n


# ------------------------------------------------------------------------------------------ the runner
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


# ------------------------------------------------------------------------------------------ the child
def child_args(settings, limits: JobSettings) -> dict:
    """What a child needs from the service settings (plain data: it is spawned)."""
    return {
        "db_url": settings.db_url,
        "sqlite_synchronous": settings.sqlite_synchronous,
        "log_synchronous": settings.log_synchronous,
        "policy_dir": str(Path(settings.policy_dir).resolve()),
        "limits": asdict(limits),
    }


__all__ = ["JobRunner", "JobService", "JobSettings", "child_args", "jobs", "validate"]
