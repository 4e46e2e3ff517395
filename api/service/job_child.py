"""A job's child process: train or sweep, writing fenced progress and a log tail back to the job's row, then
save and register the policy (started by :class:`api.service.job_runner.JobRunner` through
``api.service.job_worker``)."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api.service.db import Database, open_database
from api.service.db import policies as policies_table
from api.service.job_specs import LOG_CHARS, JobSettings
from api.service.jobs import JobService


class _Reporter:
    """Progress and log lines from the child, written (fenced, at most every ``every`` seconds) to the row."""

    def __init__(self, service: JobService, job_id: str, attempt: int, every: float = 0.5) -> None:
        self.service, self.job_id, self.attempt, self.every = service, job_id, attempt, every
        self._last = 0.0
        self._lines: list[str] = []
        self._progress: float | None = None
        self._stage: str | None = None

    def __call__(
        self, progress: float | None = None, line: str | None = None, stage: str | None = None, force: bool = False
    ) -> None:
        if line:
            self._lines.append(line)
        if progress is not None:
            self._progress = progress
        if stage is not None:
            self._stage = stage
        if not force and stage is None and time.monotonic() - self._last < self.every:
            return
        values: dict[str, Any] = {}
        if self._progress is not None:
            values["progress"] = round(min(max(self._progress, 0.0), 1.0), 4)
        if self._stage is not None:
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
        if not service.fenced(
            job_id,
            attempt,
            log="succeeded",
            state="succeeded",
            stage="done",
            progress=1.0,
            result=_json_safe(result),
            finished_at=time.time(),
            error=None,
        ):
            raise SystemExit(3)
    except SystemExit:
        raise
    except BaseException as exc:  # a bad spec or a training failure: the job fails with the reason, no retry
        reason = getattr(exc, "reason", None) or str(exc)
        message = f"{type(exc).__name__}: {reason}"[:2000]
        report(force=True)
        service.fenced(
            job_id,
            attempt,
            log=f"failed: {message}",
            state="failed",
            stage="failed",
            finished_at=time.time(),
            error=message,
        )
    finally:
        db.dispose()


def _progress_bar(report: _Reporter, low: float, high: float):
    """A tqdm replacement for ``engine.sequoia.dqn`` in this child: silent, reporting each episode."""
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
        return conn.execute(
            sa.select(policies_table.c.id)
            .where(
                policies_table.c.path.in_([relative, relative.rstrip("/")]),
                policies_table.c.policy_version == version,
                policies_table.c.deleted.is_(False),
            )
            .order_by(policies_table.c.created_at)
            .limit(1)
        ).scalar()


def _train(spec: dict, job_id: str, root: Path, db: Database, report: _Reporter) -> dict:
    import numpy as np
    import torch

    import engine.sequoia.dqn as dqn_module
    from api.service.policies import PolicyRegistry
    from engine import DQNConfig
    from engine.checkpoint import read_checkpoint_meta
    from engine.engine import train_dqn
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
            env = make(
                spec["scenario"],
                seed=seed,
                **{k: spec[k] for k in ("n_arms", "budget", "horizon") if spec.get(k) is not None},
            )
        config = DQNConfig.from_dict({**DQNConfig().to_dict(), **spec.get("config", {})})
        report(0.02, f"warm start ({config.warm_start_epochs} epochs)", stage="warm_start")
        original = getattr(dqn_module, "tqdm", None)
        dqn_module.tqdm = _progress_bar(report, 0.05, 0.9)
        try:
            engine = train_dqn(env, config, seed=seed, progress=True)
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
    result: dict[str, Any] = {
        "policy_id": policy_id,
        "policy_version": version,
        "path": relative,
        "policy_name": spec.get("policy_name"),
    }
    if summary:
        returns = summary.get("episode_returns") or []
        result["training"] = {
            "episodes": len(returns),
            "seconds": summary.get("seconds"),
            "last10_mean_return": float(np.mean(returns[-10:])) if returns else None,
            "warm_start_loss": summary.get("warm_start_loss"),
            "act_decisions": summary.get("act_decisions"),
            "selected_snapshot": summary.get("selected_snapshot"),
            "snapshot_returns": summary.get("snapshot_returns"),
        }
    return result


def _sweep(spec: dict, report: _Reporter) -> dict:
    from engine.experiments.sweep import SweepConfig, run_task
    from engine.experiments.sweep_summary import aggregate

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
