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
import datetime as dt
import json
import math
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

from api.service.db import ID, Database, open_database
from api.service.db import policies as policies_table
from api.service.errors import ApiError

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
LOG_CHARS = 4000
ROOT = Path(__file__).resolve().parents[2]

# a MetaData of its own: created by JobService (tolerating another worker process creating it at the same time),
# not by open_database's create_all, which worker processes starting together on PostgreSQL would race on
job_metadata = sa.MetaData()
jobs = sa.Table(
    # claimed with a fenced lease; ``attempts`` is the fencing token (see the module docstring)
    "jobs", job_metadata,
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


def _env(name: str, default: str) -> str:
    return os.environ.get(f"REDWOOD_{name}", default)


@dataclass
class JobSettings:
    """Limits and the worker pool; every field also from ``REDWOOD_<FIELD>`` (upper case), e.g.
    ``REDWOOD_JOB_WORKERS=2``. ``job_workers``: jobs running at once across every server process on the
    database (0: this process runs none, e.g. an API-only replica). ``job_lease_seconds``: a running job
    whose lease is this old is taken for dead. Uploads: ``upload_max_bytes`` (also bounded by the service's
    ``max_body_bytes``), ``upload_max_members``, ``upload_max_uncompressed``."""

    job_workers: int = 1
    job_max_attempts: int = 3
    job_lease_seconds: float = 15.0
    job_poll_seconds: float = 0.5
    job_max_arms: int = 200
    job_max_episodes: int = 5000
    job_max_horizon: int = 200
    job_max_sweep_tasks: int = 50
    job_threads: int = 1
    upload_max_bytes: int = 64 * 1024 * 1024
    upload_max_members: int = 16
    upload_max_uncompressed: int = 256 * 1024 * 1024

    @classmethod
    def from_env(cls, **overrides) -> JobSettings:
        values: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            raw = os.environ.get(f"REDWOOD_{name.upper()}")
            if raw is not None:
                values[name] = float(raw) if f.type in ("float", float) else int(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def public(row: dict, with_log: bool = True) -> dict:
    return {
        "id": row["id"], "kind": row["kind"], "state": row["state"], "stage": row["stage"],
        "progress": float(row["progress"]), "spec": row["spec"], "result": row["result"], "error": row["error"],
        "log": row["log"] if with_log else None, "attempts": int(row["attempts"]),
        "created_at": iso(row["created_at"]), "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]), "worker_pid": row["worker_pid"],
        "lease_expires_at": iso(row["lease_expires"]) if row["state"] == "running" else None,
        "cancel_requested": bool(row["cancel_requested"]),
    }


def _tail(log: str, line: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    text = log + "".join(f"{stamp} {part}\n" for part in line.splitlines() or [""])
    return text[-LOG_CHARS:]


# ------------------------------------------------------------------------------------------ validation
def _reject(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_input", message, field)


DQN_CAPS = {"warm_start_samples": 200_000, "warm_start_epochs": 20_000, "batch_size": 8192,
            "replay_size": 2_000_000, "updates_per_step": 64, "target_update_every": 1_000_000,
            "random_candidates": 8192, "elite_candidates": 8192, "snapshots": 100, "validation_episodes": 1000}
DQN_UNIT = ("lr_floor_fraction", "gamma", "epsilon_start", "epsilon_end", "epsilon_decay_fraction", "act_mip_gap")


def validate_dqn(config: Any, prefix: str, limits: JobSettings, episodes_key: str | None = "episodes") -> dict:
    """``config`` checked field by field against :class:`DQNConfig` (unknown fields, wrong types, bounds:
    422 naming ``prefix.field``); returns it unchanged."""
    from engine.dqn import DQNConfig
    from engine.selectors import SELECTORS

    if not isinstance(config, dict):
        raise _reject(prefix, "must be an object of DQNConfig fields")
    defaults = DQNConfig()
    for key, value in config.items():
        field = f"{prefix}.{key}"
        if key not in DQNConfig.__dataclass_fields__:
            raise _reject(field, f"unknown DQNConfig field {key!r}")
        default = getattr(defaults, key)
        if key == "hidden":
            if (not isinstance(value, list) or not 1 <= len(value) <= 8
                    or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 1024 for w in value)):
                raise _reject(field, "must be a list of 1 to 8 layer widths, each an integer in [1, 1024]")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise _reject(field, "must be true or false")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _reject(field, "must be a non-negative integer")
            cap = limits.job_max_episodes if key == "episodes" else DQN_CAPS.get(key, 10**6)
            if value > cap:
                raise _reject(field, f"must be at most {cap}")
            if key in ("episodes", "batch_size", "replay_size", "target_update_every") and value < 1:
                raise _reject(field, "must be at least 1")
        elif isinstance(default, float):
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise _reject(field, "must be a finite non-negative number")
            if key in DQN_UNIT and value > 1:
                raise _reject(field, "must be in [0, 1]")
            if key == "act_time_limit" and not 0 < value <= 60:
                raise _reject(field, "must be in (0, 60] seconds")
            if key in ("lr", "grad_clip") and not 0 < value <= 10:
                raise _reject(field, "must be in (0, 10]")
        elif isinstance(default, str):
            if key == "act_selector" and value not in (*SELECTORS, "auto"):
                raise _reject(field, f"unknown selector {value!r}; known: {', '.join(sorted(SELECTORS))}")
            if not isinstance(value, str):
                raise _reject(field, "must be a string")
    if episodes_key is None and "episodes" in config:
        raise _reject(f"{prefix}.episodes", "reserved: use the sweep's train_episodes")
    return config


GENERATOR_KEYS = ("n_arms", "budget", "seed", "horizon")


def validate_train(spec: dict, limits: JobSettings) -> dict:
    """A normalised training spec, or 422 naming the field. Builds the instance once (cheap) to check it."""
    from scenarios import instance_class, list_scenarios, load_instance, make
    from scenarios.cormab import CoRMABInstance
    from scenarios.errors import InvalidInputError

    name = spec.get("scenario")
    if not isinstance(name, str) or name not in list_scenarios():
        raise _reject("scenario", f"unknown scenario {name!r}; known: {', '.join(list_scenarios())}")
    if not issubclass(instance_class(name), CoRMABInstance):
        raise _reject("scenario", f"{name!r} is not trained by the DQN engine (train jobs: combinatorial "
                                  "restless scenarios)")
    instance = spec.get("instance")
    generator = {k: spec[k] for k in GENERATOR_KEYS if spec.get(k) is not None}
    if instance is not None and set(generator) - {"seed"}:
        raise _reject(sorted(set(generator) - {"seed"})[0], "give either an instance or generator options")
    for key, value in generator.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
            raise _reject(key, "must be a positive integer" if key != "seed" else "must be a non-negative integer")
    if generator.get("n_arms", 0) > limits.job_max_arms:
        raise _reject("n_arms", f"must be at most {limits.job_max_arms}")
    if generator.get("horizon", 0) > limits.job_max_horizon:
        raise _reject("horizon", f"must be at most {limits.job_max_horizon}")
    if generator.get("seed", 0) >= 2**32:
        raise _reject("seed", "must be below 2**32")
    try:
        inst = load_instance(name, instance) if instance is not None else make(name, **generator).instance
    except InvalidInputError as exc:
        raise _reject(f"instance.{exc.field}" if instance is not None else exc.field, exc.reason) from exc
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise _reject("instance" if instance is not None else "scenario", str(exc)[:500]) from exc
    if inst.n_arms > limits.job_max_arms:
        raise _reject("instance.n_arms" if instance is not None else "n_arms",
                      f"{inst.n_arms} arms: at most {limits.job_max_arms}")
    if inst.horizon > limits.job_max_horizon:
        raise _reject("instance.horizon" if instance is not None else "horizon",
                      f"horizon {inst.horizon}: at most {limits.job_max_horizon}")
    config = validate_dqn(spec.get("config") or {}, "config", limits)
    policy_name = spec.get("policy_name")
    out = {"kind": "train", "scenario": name, "config": config, "seed": int(generator.get("seed", 0)),
           "policy_name": policy_name}
    if instance is not None:
        out["instance"] = inst.model_dump(mode="json")
    else:
        out.update({k: v for k, v in generator.items() if k != "seed"})
    return out


SWEEP_CAPS = {"eval_episodes": 1000, "exact_max_arms": 8, "bound_time_limit": 600.0, "time_limit": 60.0}


def validate_sweep(spec: dict, limits: JobSettings) -> dict:
    from engine.sweep import SweepConfig
    from scenarios.errors import InvalidInputError

    config = spec.get("config") or {}
    if not isinstance(config, dict):
        raise _reject("config", "must be an object of SweepConfig fields")
    unknown = sorted(set(config) - set(SweepConfig.__dataclass_fields__))
    if unknown:
        raise _reject(f"config.{unknown[0]}", f"unknown SweepConfig field {unknown[0]!r}")
    for key in ("domains", "seeds", "methods"):
        if config.get(key) is not None and not (isinstance(config[key], list) and len(config[key]) <= 64):
            raise _reject(f"config.{key}", "must be a list (at most 64 entries)")
    for key in ("seeds",):
        if any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**32 for s in config.get(key) or []):
            raise _reject("config.seeds", "seeds must be integers in [0, 2**32)")
    for key, cap in (("n_arms", limits.job_max_arms), ("train_episodes", limits.job_max_episodes),
                     ("horizon", limits.job_max_horizon), *SWEEP_CAPS.items()):
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise _reject(f"config.{key}", "must be a number")
        if value > cap:
            raise _reject(f"config.{key}", f"must be at most {cap}")
    if "budget" in config and isinstance(config["budget"], int) and config["budget"] > limits.job_max_arms:
        raise _reject("config.budget", f"must be at most {limits.job_max_arms}")
    validate_dqn(config.get("dqn") or {}, "config.dqn", limits, episodes_key=None)
    if not isinstance(config.get("scenario", {}), dict):
        raise _reject("config.scenario", "must be an object of generator parameters")
    try:
        cfg = SweepConfig.from_dict(config)
    except InvalidInputError as exc:
        raise _reject(f"config.{exc.field}", exc.reason) from exc
    except (TypeError, ValueError) as exc:
        raise _reject("config", str(exc)[:500]) from exc
    n = len(cfg.domains) * len(cfg.seeds)
    if n > limits.job_max_sweep_tasks:
        raise _reject("config.seeds", f"{n} (domain, seed) tasks: at most {limits.job_max_sweep_tasks}")
    if cfg.budget > cfg.n_arms:
        raise _reject("config.budget", "must be at most n_arms")
    return {"kind": "sweep", "config": cfg.to_dict()}


def validate(spec: dict, limits: JobSettings) -> dict:
    kind = spec.get("kind")
    if kind == "train":
        extra = sorted(set(spec) - {"kind", "scenario", "instance", "config", "policy_name", *GENERATOR_KEYS})
        if extra:
            raise _reject(extra[0], f"not a field of a train job: {extra[0]!r}")
        return validate_train(spec, limits)
    if kind == "sweep":
        extra = sorted(set(spec) - {"kind", "config"})
        if extra:
            raise _reject(extra[0], f"not a field of a sweep job: {extra[0]!r} (sweep settings go in config)")
        return validate_sweep(spec, limits)
    raise _reject("kind", "must be 'train' or 'sweep'")


# ------------------------------------------------------------------------------------------ the store
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
        row = {"id": uuid.uuid4().hex, "kind": clean["kind"], "spec": clean, "state": "queued", "stage": "queued",
               "progress": 0.0, "log": _tail("", "queued"), "result": None, "error": None,
               "created_at": time.time(), "started_at": None, "finished_at": None, "attempts": 0,
               "worker_host": None, "worker_pid": None, "child_pid": None, "lease_expires": None,
               "cancel_requested": False}
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
                conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.state == "queued").values(
                    state="cancelled", stage="cancelled", finished_at=now, cancel_requested=True,
                    log=_tail(row["log"], "cancelled while queued")))
            else:
                conn.execute(jobs.update().where(jobs.c.id == job_id).values(cancel_requested=True))
        end = time.monotonic() + wait
        while True:
            row = self.row(job_id)
            if row["state"] in TERMINAL or time.monotonic() > end:
                return public(row)
            time.sleep(0.1)

    # -------------------------------------------------------------------------------- claiming and leases
    def claim(self, pid: int) -> dict | None:
        """Atomically take the oldest queued job if fewer than ``job_workers`` run; None when there is none."""
        with self.db.read.connect() as conn:  # the common case, nothing queued, takes no write lock
            if conn.execute(sa.select(jobs.c.id).where(jobs.c.state == "queued").limit(1)).first() is None:
                return None
        now = time.time()
        with self.db.main.begin() as conn:
            running = conn.execute(sa.select(sa.func.count()).select_from(jobs)
                                   .where(jobs.c.state == "running")).scalar_one()
            if running >= self.limits.job_workers:
                return None
            row = conn.execute(sa.select(jobs.c.id, jobs.c.log).where(jobs.c.state == "queued")
                               .order_by(jobs.c.created_at, jobs.c.id).limit(1)).mappings().first()
            if row is None:
                return None
            done = conn.execute(jobs.update().where(jobs.c.id == row["id"], jobs.c.state == "queued").values(
                state="running", stage="starting", attempts=jobs.c.attempts + 1, started_at=now,
                worker_host=self.host, worker_pid=pid, child_pid=None,
                lease_expires=now + self.limits.job_lease_seconds,
                log=_tail(row["log"], f"claimed by pid {pid} on {self.host}"))).rowcount
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
            pid_gone = (row["worker_host"] == self.host and row["worker_pid"] != own_pid
                        and not _alive(row["worker_pid"]))
            expired = row["lease_expires"] is None or row["lease_expires"] < now
            if not (pid_gone or expired):
                continue
            why = f"worker pid {row['worker_pid']} gone" if pid_gone else "lease expired"
            if row["cancel_requested"]:
                values = {"state": "cancelled", "stage": "cancelled", "finished_at": now}
                line = f"{why}: cancelled (cancellation was requested)"
            elif row["attempts"] >= self.limits.job_max_attempts:
                values = {"state": "failed", "stage": "failed", "finished_at": now,
                          "error": f"{why} on attempt {row['attempts']} of {self.limits.job_max_attempts}: "
                                   "giving up"}
                line = values["error"]
            else:
                values = {"state": "queued", "stage": "queued", "progress": 0.0, "worker_pid": None,
                          "child_pid": None, "lease_expires": None}
                line = f"{why} during attempt {row['attempts']}: re-queued"
            if self.fenced(row["id"], row["attempts"], log=line, **values):
                n += 1
        return n


# ------------------------------------------------------------------------------------------ the runner
@dataclass
class _Child:
    job_id: str
    attempt: int
    proc: subprocess.Popen
    renew_at: float
    stderr: Any = None

    def stderr_tail(self, n: int = 1500) -> str:
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

    def start(self) -> JobRunner:
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
                    self.service.fenced(child.job_id, child.attempt, log="server shut down: re-queued",
                                        state="queued", stage="queued", progress=0.0, worker_pid=None,
                                        child_pid=None, lease_expires=None, attempts=child.attempt - 1)
        self.children.clear()

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
        args = {**self.child_args, "job_id": row["id"], "attempt": int(row["attempts"]), "spec": row["spec"],
                "threads": self.limits.job_threads}
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the child)
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen([sys.executable, "-m", "api.service.job_worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=str(ROOT))
        proc.stdin.write(json.dumps(args).encode())
        proc.stdin.close()
        self.children[row["id"]] = _Child(row["id"], int(row["attempts"]), proc,
                                          time.monotonic() + self.limits.job_lease_seconds / 3, stderr)
        self.service.fenced(row["id"], int(row["attempts"]), child_pid=proc.pid,
                            log=f"attempt {row['attempts']}: child process {proc.pid}")

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
                    svc.fenced(job_id, attempt, log="cancelled", state="cancelled", stage="cancelled",
                               finished_at=time.time())
                elif attempt >= self.limits.job_max_attempts:
                    svc.fenced(job_id, attempt, log=f"child exited with code {code}: {tail}", state="failed",
                               stage="failed", finished_at=time.time(),
                               error=f"worker process exited with code {code} on the last attempt: {tail[-500:]}")
                else:
                    svc.fenced(job_id, attempt, log=f"child exited with code {code}: re-queued\n{tail}",
                               state="queued",
                               stage="queued", progress=0.0, worker_pid=None, child_pid=None, lease_expires=None)
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
            svc.fenced(job_id, attempt, log="cancelled: worker process terminated", state="cancelled",
                       stage="cancelled", finished_at=time.time())
            return
        if time.monotonic() >= child.renew_at:
            if svc.fenced(job_id, attempt, lease_expires=time.time() + self.limits.job_lease_seconds):
                child.renew_at = time.monotonic() + self.limits.job_lease_seconds / 3
            else:
                _terminate(child.proc)
                _close(child)
                del self.children[job_id]


def _terminate(proc: subprocess.Popen) -> None:
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
class _Reporter:
    """Progress and log lines from the child, written (fenced, at most every ``every`` seconds) to the row."""

    def __init__(self, service: JobService, job_id: str, attempt: int, every: float = 0.5) -> None:
        self.service, self.job_id, self.attempt, self.every = service, job_id, attempt, every
        self._last, self._lines = 0.0, []

    def __call__(self, progress: float | None = None, line: str | None = None, stage: str | None = None,
                 force: bool = False) -> None:
        if line:
            self._lines.append(line)
        if progress is not None:
            self._progress = progress
        if stage is not None:
            self._stage = stage
        if not force and stage is None and time.monotonic() - self._last < self.every:
            return
        values = {}
        if getattr(self, "_progress", None) is not None:
            values["progress"] = round(min(max(self._progress, 0.0), 1.0), 4)
        if getattr(self, "_stage", None) is not None:
            values["stage"] = self._stage
        text = "\n".join(self._lines)[-LOG_CHARS:] if self._lines else None
        self._lines = []
        if not self.service.fenced(self.job_id, self.attempt, log=text, **values):
            raise SystemExit(3)  # lost the lease: another attempt owns the job now
        self._last = time.monotonic()


def _watch_parent(ppid: int) -> None:
    while True:
        if os.getppid() != ppid:
            os._exit(4)  # the server process died: the job will be re-queued by whoever runs next
        time.sleep(0.5)


def child_main(args: dict) -> None:
    """Entry point of a job's child process (``args`` is plain data). SIGTERM and SIGINT are ignored: sent to the
    whole process group (a service manager stopping the server, Ctrl-C) they would otherwise kill the job before
    its owner can put it back in the queue; the owner stops it with SIGKILL, and it exits when its owner dies."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    import torch

    torch.set_num_threads(max(1, int(args.get("threads", 1))))
    db = open_database(args["db_url"], args["sqlite_synchronous"], args["log_synchronous"])
    service = JobService(db, JobSettings(**args["limits"]))
    job_id, attempt, spec = args["job_id"], args["attempt"], args["spec"]
    report = _Reporter(service, job_id, attempt)
    try:
        report(0.0, f"attempt {attempt} started (pid {os.getpid()})", stage="starting")
        if spec["kind"] == "train":
            result = _train(spec, job_id, Path(args["policy_dir"]), db, report)
        else:
            result = _sweep(spec, report)
        report(force=True)  # lines held back by the write throttle go in before the final state
        if not service.fenced(job_id, attempt, log="succeeded", state="succeeded", stage="done", progress=1.0,
                              result=_json_safe(result), finished_at=time.time(), error=None):
            raise SystemExit(3)
    except SystemExit:
        raise
    except BaseException as exc:  # a bad spec or a training failure: the job fails with the reason, no retry
        reason = getattr(exc, "reason", None) or str(exc)
        message = f"{type(exc).__name__}: {reason}"[:2000]
        report(force=True)
        service.fenced(job_id, attempt, log=f"failed: {message}", state="failed", stage="failed",
                       finished_at=time.time(), error=message)
    finally:
        db.dispose()


def _progress_bar(report: _Reporter, low: float, high: float):
    """A tqdm replacement for ``engine.dqn`` in this child: silent, reporting each episode."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        def __init__(self, iterable=None, *a, **kw) -> None:
            kw["disable"] = True
            super().__init__(iterable, *a, **kw)
            self._n = len(iterable) if iterable is not None and hasattr(iterable, "__len__") else 0
            self._i = 0

        def __iter__(self):
            report(low, "training episodes", stage="training")
            for i, item in enumerate(self.iterable):
                self._i = i
                yield item
                report(low + (high - low) * (i + 1) / max(self._n, 1))

        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
            items = {**(ordered_dict or {}), **kwargs}
            report(line=f"episode {self._i + 1}/{self._n} " + " ".join(f"{k}={v}" for k, v in items.items()))

    return Bar


def _existing_policy(db: Database, relative: str, version: str) -> str | None:
    with db.read.connect() as conn:
        return conn.execute(sa.select(policies_table.c.id).where(
            policies_table.c.path.in_([relative, relative.rstrip("/")]),
            policies_table.c.policy_version == version,
            policies_table.c.deleted.is_(False)).order_by(policies_table.c.created_at).limit(1)).scalar()


def _train(spec: dict, job_id: str, root: Path, db: Database, report: _Reporter) -> dict:
    import numpy as np
    import torch

    import engine.dqn as dqn_module
    from api.service.policies import PolicyRegistry
    from engine import DQNConfig, Engine
    from engine.checkpoint import read_checkpoint_meta
    from scenarios import make

    relative = f"jobs/{job_id}"
    target = root / relative
    summary = None
    if (target / "config.json").is_file() and (target / "weights.safetensors").is_file():
        report(0.9, "a checkpoint from an earlier attempt is on disk: registering it", stage="registering")
        version = read_checkpoint_meta(target)["policy_version"]
    else:
        seed = int(spec.get("seed", 0))
        torch.manual_seed(seed)
        if spec.get("instance") is not None:
            env = make(spec["scenario"], instance=spec["instance"])
        else:
            env = make(spec["scenario"], seed=seed, **{k: spec[k] for k in ("n_arms", "budget", "horizon")
                                                      if spec.get(k) is not None})
        config = DQNConfig.from_dict({**DQNConfig().to_dict(), **spec.get("config", {})})
        report(0.02, f"warm start ({config.warm_start_epochs} epochs)", stage="warm_start")
        original = getattr(dqn_module, "tqdm", None)
        dqn_module.tqdm = _progress_bar(report, 0.05, 0.9)
        try:
            engine = Engine.train(env, config, seed=seed, progress=True)
        finally:
            dqn_module.tqdm = original
        report(0.92, "saving checkpoint", stage="saving")
        engine.save(target)
        version = engine.policy_version
        summary = engine.training_summary
        report(0.95, f"saved {relative} (policy version {version})", stage="registering")
    policy_id = _existing_policy(db, relative, version)
    if policy_id is None:
        out = PolicyRegistry(db, root, 1).register(relative)
        info = out[0] if isinstance(out, tuple) else out
        policy_id = info["id"]
        summary = summary if summary is not None else info.get("training_summary")
    report(0.99, f"registered policy {policy_id}", force=True)
    result: dict[str, Any] = {"policy_id": policy_id, "policy_version": version, "path": relative,
                              "policy_name": spec.get("policy_name")}
    if summary:
        returns = summary.get("episode_returns") or []
        result["training"] = {
            "episodes": len(returns), "seconds": summary.get("seconds"),
            "last10_mean_return": float(np.mean(returns[-10:])) if returns else None,
            "warm_start_loss": summary.get("warm_start_loss"), "act_decisions": summary.get("act_decisions"),
            "selected_snapshot": summary.get("selected_snapshot"),
            "snapshot_returns": summary.get("snapshot_returns"),
        }
    return result


def _sweep(spec: dict, report: _Reporter) -> dict:
    from engine.sweep import SweepConfig, aggregate, run_task

    cfg = SweepConfig.from_dict(spec["config"])
    tasks = cfg.tasks()
    start, results = time.perf_counter(), []
    report(0.0, f"{len(tasks)} tasks", stage="sweeping")
    for i, task in enumerate(tasks):
        results.append(run_task(task))
        report((i + 1) / len(tasks), f"task {i + 1}/{len(tasks)}: {task['domain']} seed {task['seed']} done")
    return {"summary": aggregate(results), "seconds": time.perf_counter() - start, "tasks": len(tasks)}


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return _json_safe(value.item())
    return value


def child_args(settings, limits: JobSettings) -> dict:
    """What a child needs from the service settings (plain data: it is spawned)."""
    return {"db_url": settings.db_url, "sqlite_synchronous": settings.sqlite_synchronous,
            "log_synchronous": settings.log_synchronous, "policy_dir": str(Path(settings.policy_dir).resolve()),
            "limits": asdict(limits)}


__all__ = ["JobRunner", "JobService", "JobSettings", "child_args", "child_main", "jobs", "validate"]
