"""Training and sweep jobs over REST: validated specs stored in the ``jobs`` table, run by worker processes.

Life of a job: ``POST /v1/jobs`` validates the spec fully (422 naming the field) and stores a ``queued`` row.
Every server process runs a :class:`api.service.job_runner.JobRunner` thread. A runner claims a queued job with
one atomic, fenced ``UPDATE ... WHERE id = :id AND state = 'queued'`` (and only while fewer than ``job_workers``
jobs are running in the whole database), which sets ``state = 'running'``, ``attempts = attempts + 1`` (the
fencing token), its host and pid and a lease. It then starts a child process (or a Ray task,
:mod:`api.service.job_ray`) that trains (or sweeps), writes progress and a log tail back to the row, saves the
checkpoint under ``<policy_dir>/jobs/<job id>`` and registers it as a policy. Every write of the child and the
runner carries ``WHERE attempts = :attempt AND state = 'running'``, so a worker that lost its lease can never
overwrite a newer attempt.

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

import os
import socket
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import sqlalchemy as sa

from api.service.db import ID, Database
from api.service.errors import ApiError
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
#: PostgreSQL advisory lock that serialises claims (a constant of this application: "redwood" in ASCII)
CLAIM_LOCK_KEY = 0x726564776F6F64


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
            cancelled_queued = False
            if row["state"] == "queued":
                cancelled_queued = (
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
                    ).rowcount
                    == 1
                )
            if not cancelled_queued:  # running, or claimed by a runner since the read above: its runner stops it
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.state.not_in(TERMINAL))
                    .values(cancel_requested=True)
                )
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
            if conn.dialect.name == "postgresql":  # claims one at a time, so the running count below holds
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK_KEY})
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


__all__ = ["JobService", "JobSettings", "child_args", "jobs", "validate"]
