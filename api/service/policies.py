"""Registered policies: rows in the database, and per-policy pools of loaded engines (engines and their
highspy models are not thread-safe, so each engine serves one request at a time)."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from api.service.db import Database, policies
from api.service.errors import ApiError
from api.service.paths import canonical_path, resolve_checkpoint
from scenarios.errors import InvalidInputError

if TYPE_CHECKING:
    from engine import Engine
    from engine.lookahead.policy import LookaheadPolicy
    from engine.planners.policy import PlannerPolicy

    Served = Engine | PlannerPolicy | LookaheadPolicy  # the policy kinds the REST service decides with


def _load(path: Path) -> Served:
    """Engine.load (imported on first use: the engine package is heavy and sessions do not need it)."""
    import torch

    from engine import Engine
    from engine.lookahead.policy import LookaheadPolicy
    from engine.planners.policy import PlannerPolicy

    torch.set_num_threads(1)
    try:
        policy = Engine.load(path)
    except ApiError:
        raise
    except Exception as exc:  # a malformed checkpoint is bad input, not a server fault
        raise ApiError(
            422, "invalid_checkpoint", f"cannot load checkpoint: {type(exc).__name__}: {exc}"[:500], "path"
        ) from exc
    if not isinstance(policy, Engine | PlannerPolicy | LookaheadPolicy):
        raise ApiError(422, "invalid_checkpoint", f"{policy.kind} checkpoints are not served over REST", "path")
    return policy


class EnginePool:
    """Up to ``size`` engines of one checkpoint, loaded lazily; ``acquire`` lends one exclusively."""

    def __init__(self, path: Path, version: str, size: int, first: Served | None = None) -> None:
        self.path, self.version, self.size = path, version, max(1, size)
        self._free: queue.Queue[Served] = queue.Queue()
        self._created = 0
        self._lock = threading.Lock()
        if first is not None:
            self._free.put(first)
            self._created = 1

    def _new(self) -> Served:
        engine = _load(self.path)
        if engine.policy_version != self.version:
            raise ApiError(
                409,
                "policy_changed",
                f"the checkpoint on disk is version {engine.policy_version}, "
                f"registered as {self.version}; register it again",
                None,
            )
        return engine

    @contextmanager
    def acquire(self, timeout: float = 60.0) -> Iterator[Served]:
        try:
            engine = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._created < self.size
                if grow:
                    self._created += 1
            if grow:
                try:
                    engine = self._new()
                except BaseException:
                    with self._lock:
                        self._created -= 1
                    raise
            else:
                try:
                    engine = self._free.get(timeout=timeout)
                except queue.Empty as exc:
                    raise ApiError(409, "busy", "every engine of this policy stayed busy", None) from exc
        try:
            yield engine
        finally:
            self._free.put(engine)


def policy_info(row: dict) -> dict:
    info = dict(row["info"])
    return {
        "id": row["id"],
        "path": row["path"],
        "scenario": row["scenario"],
        "policy_version": row["policy_version"],
        "created_at": row["created_at"],
        **info,
    }


class PolicyRegistry:
    def __init__(self, db: Database, root: Path, pool_size: int) -> None:
        self.db, self.root, self.pool_size = db, root, pool_size
        self._pools: dict[str, EnginePool] = {}
        self._lock = threading.Lock()
        self._register_lock = threading.Lock()  # one registration at a time per process (idempotency check)

    def register(self, relative: str) -> tuple[dict, bool]:
        """(policy, created). Idempotent: the path is normalised to the resolved checkpoint directory, and a
        checkpoint already registered with the same weights (same ``policy_version``) returns the existing
        policy (``created`` False) instead of a second one."""
        path = resolve_checkpoint(self.root, relative)
        canonical = canonical_path(self.root, path)
        engine = _load(path)
        with self._register_lock, self.db.main.begin() as conn:
            existing = (
                conn.execute(
                    sa.select(policies)
                    .where(
                        policies.c.path == canonical,
                        policies.c.policy_version == engine.policy_version,
                        policies.c.deleted.is_(False),
                    )
                    .order_by(policies.c.created_at)
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if existing is not None:
                return policy_info(dict(existing)), False
            info = _describe(engine)
            policy_id = uuid.uuid4().hex
            row = {
                "id": policy_id,
                "path": canonical,
                "scenario": engine.scenario,
                "policy_version": engine.policy_version,
                "info": info,
                "created_at": time.time(),
                "deleted": False,
            }
            conn.execute(policies.insert().values(**row))
        with self._lock:
            self._pools[policy_id] = EnginePool(path, engine.policy_version, self.pool_size, engine)
        return policy_info(row), True

    def create_planner(self, spec: dict) -> tuple[dict, bool]:
        """(policy, created) for a planner policy built from ``spec`` (:class:`PlannerCreate`): saved under
        ``planners/`` in the policy directory and registered like a checkpoint (idempotent)."""
        import torch

        from engine.planners.policy import PlannerPolicy
        from scenarios import make

        torch.set_num_threads(1)
        generator = {k: spec[k] for k in ("n_arms", "budget", "seed", "horizon") if k in spec}
        if "instance" in spec and generator:
            raise ApiError(
                422,
                "invalid_input",
                f"give either instance or generator options, not both ({', '.join(sorted(generator))})",
                sorted(generator)[0],
            )
        env = (
            make(spec["scenario"], instance=spec["instance"])
            if "instance" in spec
            else make(spec["scenario"], **generator)
        )
        if getattr(env.instance, "n_arms", 0) > 1_000:
            raise ApiError(422, "too_expensive", "planner policies are limited to 1000 arms", "instance")
        options = spec.get("options", {})
        reserved = sorted(set(options) & {"scenario", "instance", "planner", "name"})
        if reserved:
            raise ApiError(422, "invalid_input", f"{reserved[0]} is a field of the request, not an option", "options")
        try:
            policy = PlannerPolicy(spec["scenario"], env.instance, spec["planner"], **options)
        except TypeError as err:  # an option of the wrong kind the planner's signature refuses
            raise ApiError(422, "invalid_input", str(err), "options") from err
        except InvalidInputError as err:  # named by the request's path to it
            field = f"options.{err.field}" if err.field in options else err.field
            raise ApiError(422, "invalid_input", err.reason, field) from err
        relative = f"planners/{spec['scenario']}-{policy.name}-{policy.policy_version}"
        target = self.root / relative
        if not target.exists():  # content-addressed: written once, never replaced under a concurrent reader
            staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            policy.save(staged)
            try:
                os.rename(staged, target)
            except OSError:
                shutil.rmtree(staged, ignore_errors=True)
                if not target.exists():
                    raise
                # an identical request wrote the same checkpoint first
        return self.register(relative)

    def row(self, policy_id: str) -> dict:
        """The policy's row, read from the database every time (another worker process may have deleted it)."""
        with self.db.read.connect() as conn:
            row = (
                conn.execute(sa.select(policies).where(policies.c.id == policy_id, policies.c.deleted.is_(False)))
                .mappings()
                .first()
            )
        if row is None:
            with self._lock:
                self._pools.pop(policy_id, None)
            raise ApiError(404, "not_found", f"no policy {policy_id!r}", "policy_id")
        return dict(row)

    def get(self, policy_id: str) -> dict:
        return policy_info(self.row(policy_id))

    def list(self) -> list[dict]:
        with self.db.read.connect() as conn:
            rows = (
                conn.execute(sa.select(policies).where(policies.c.deleted.is_(False)).order_by(policies.c.created_at))
                .mappings()
                .all()
            )
        return [policy_info(dict(r)) for r in rows]

    def delete(self, policy_id: str) -> None:
        self.row(policy_id)
        with self.db.main.begin() as conn:
            conn.execute(policies.update().where(policies.c.id == policy_id).values(deleted=True))
        with self._lock:
            self._pools.pop(policy_id, None)

    def pool(self, policy_id: str) -> EnginePool:
        """This process's engines for a registered policy (404 once it is deleted, by any process)."""
        row = self.row(policy_id)
        with self._lock:
            pool = self._pools.get(policy_id)
            if pool is None:
                path = resolve_checkpoint(self.root, row["path"])
                pool = self._pools[policy_id] = EnginePool(path, row["policy_version"], self.pool_size)
        return pool


def _describe(engine) -> dict:
    """The stored description of a loaded policy: a trained Q-network's shape and training, or a planner's."""
    from engine.lookahead.policy import LookaheadPolicy
    from engine.planners.policy import PlannerPolicy

    state_length = int(engine.instance.n_arms) + 1 if hasattr(engine.instance, "n_arms") else 0
    if isinstance(engine, LookaheadPolicy):
        return {
            "kind": "lookahead",
            "planner": engine.base.planner.config(),
            "state_length": state_length,
            "training": _json_safe(engine.config.to_dict()),
            "training_summary": _json_safe(engine.training_summary),
        }
    if isinstance(engine, PlannerPolicy):
        return {
            "kind": "planner",
            "planner": engine.planner.config(),
            "state_length": state_length,
            "training": {},
            "training_summary": {},
        }
    net = engine.network
    return {
        "kind": "dqn",
        "network": {
            "n_actions": net.n_actions,
            "state_dim": net.state_dim,
            "hidden": list(net.hidden),
            "context_dim": net.context_dim,
        },
        "state_length": state_length,
        "training": _json_safe(engine.config.to_dict()),
        "training_summary": _json_safe(engine.training_summary),
    }


def _json_safe(value):
    """Floats that JSON cannot carry (NaN, infinity) become None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if hasattr(value, "item") and callable(value.item):
        return _json_safe(value.item())
    return value
