"""Job specs: the limits (environment variables), the public view of a job row, and full validation of a
``train`` or ``sweep`` spec before it is stored (422 naming the field)."""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from typing import Any

from api.service.errors import ApiError

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
LOG_CHARS = 4000


def _env(name: str, default: str) -> str:
    return os.environ.get(f"REDWOOD_{name}", default)


@dataclass
class JobSettings:
    """Limits and the worker pool; every field also from ``REDWOOD_<FIELD>`` (upper case), e.g.
    ``REDWOOD_JOB_WORKERS=2``. ``job_workers``: jobs running at once across every server process on the
    database (0: this process runs none, e.g. an API-only replica). ``job_lease_seconds``: a running job
    whose lease is this old is taken for dead. Uploads: ``upload_max_bytes`` (also bounded by the service's
    ``max_body_bytes``), ``upload_max_members``, ``upload_max_uncompressed``. ``job_executor``: ``local``
    (a child process per job) or ``ray`` (a Ray task per job, on ``job_ray_address``: empty for a local
    cluster, ``auto`` or ``ray://host:10001`` for an existing one; see :mod:`api.service.job_ray`)."""

    job_workers: int = 1
    job_max_attempts: int = 3
    job_lease_seconds: float = 15.0
    job_poll_seconds: float = 0.5
    job_max_arms: int = 200
    job_max_episodes: int = 5000
    job_max_horizon: int = 200
    job_max_sweep_tasks: int = 50
    job_threads: int = 1
    job_executor: str = "local"
    job_ray_address: str = ""

    def __post_init__(self) -> None:
        if self.job_executor not in ("local", "ray"):
            raise ValueError(f"REDWOOD_JOB_EXECUTOR: expected 'local' or 'ray', got {self.job_executor!r}")
        if self.job_ray_address and self.job_executor != "ray":
            raise ValueError("REDWOOD_JOB_RAY_ADDRESS: only meaningful with REDWOOD_JOB_EXECUTOR=ray")

    upload_max_bytes: int = 64 * 1024 * 1024
    upload_max_members: int = 16
    upload_max_uncompressed: int = 256 * 1024 * 1024

    @classmethod
    def from_env(cls, **overrides) -> JobSettings:
        values: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            raw = os.environ.get(f"REDWOOD_{name.upper()}")
            if raw is not None:
                if f.type in ("str", str):
                    values[name] = raw
                else:
                    values[name] = float(raw) if f.type in ("float", float) else int(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def public(row: dict, with_log: bool = True) -> dict:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "state": row["state"],
        "stage": row["stage"],
        "progress": float(row["progress"]),
        "spec": row["spec"],
        "result": row["result"],
        "error": row["error"],
        "log": row["log"] if with_log else None,
        "attempts": int(row["attempts"]),
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "worker_pid": row["worker_pid"],
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


DQN_CAPS = {
    "warm_start_samples": 200_000,
    "warm_start_epochs": 20_000,
    "batch_size": 8192,
    "replay_size": 2_000_000,
    "updates_per_step": 64,
    "target_update_every": 1_000_000,
    "random_candidates": 8192,
    "elite_candidates": 8192,
    "snapshots": 100,
    "validation_episodes": 1000,
}
DQN_UNIT = ("lr_floor_fraction", "gamma", "epsilon_start", "epsilon_end", "epsilon_decay_fraction", "act_mip_gap")


def validate_dqn(config: Any, prefix: str, limits: JobSettings, episodes_key: str | None = "episodes") -> dict:
    """``config`` checked field by field against :class:`DQNConfig` (unknown fields, wrong types, bounds:
    422 naming ``prefix.field``); returns it unchanged."""
    from engine.sequoia.dqn_config import DQNConfig
    from engine.sequoia.selectors import SELECTORS

    if not isinstance(config, dict):
        raise _reject(prefix, "must be an object of DQNConfig fields")
    defaults = DQNConfig()
    for key, value in config.items():
        field = f"{prefix}.{key}"
        if key not in DQNConfig.__dataclass_fields__:
            raise _reject(field, f"unknown DQNConfig field {key!r}")
        default = getattr(defaults, key)
        if key == "hidden":
            if (
                not isinstance(value, list)
                or not 1 <= len(value) <= 8
                or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 1024 for w in value)
            ):
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
    _check_dqn_names(config, prefix)
    return config


def _check_dqn_names(config: dict, prefix: str) -> None:
    """The DQNConfig fields that name things (network, prior, planner candidates) checked against what exists, so a
    job is refused now rather than failing in its worker (or training another network than asked)."""
    from engine.planners.prior import PRIORS
    from engine.sequoia.planner_candidates import check_planner_candidates
    from scenarios.errors import InvalidInputError

    if "network" in config and config["network"] not in ("joint", "armwise"):
        raise _reject(f"{prefix}.network", f"expected 'joint' or 'armwise', got {config['network']!r}")
    if "prior" in config and config["prior"] not in PRIORS:
        raise _reject(f"{prefix}.prior", f"expected one of {', '.join(PRIORS)}, got {config['prior']!r}")
    if "planner_candidates" in config:
        names = config["planner_candidates"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) > 16:
            raise _reject(f"{prefix}.planner_candidates", "must be a list of at most 16 planner names (or 'auto')")
        try:
            check_planner_candidates(names)
        except InvalidInputError as exc:
            raise _reject(f"{prefix}.planner_candidates", exc.reason) from exc


GENERATOR_KEYS = ("n_arms", "budget", "seed", "horizon")


def validate_train(spec: dict, limits: JobSettings) -> dict:
    """A normalised training spec, or 422 naming the field. Builds the instance once (cheap) to check it."""
    from scenarios import instance_class, list_scenarios, load_instance, make
    from scenarios.cormab.instance import CoRMABInstance
    from scenarios.errors import InvalidInputError

    name = spec.get("scenario")
    if not isinstance(name, str) or name not in list_scenarios():
        raise _reject("scenario", f"unknown scenario {name!r}; known: {', '.join(list_scenarios())}")
    if not issubclass(instance_class(name), CoRMABInstance):
        raise _reject(
            "scenario", f"{name!r} is not trained by the DQN engine (train jobs: combinatorial restless scenarios)"
        )
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
        field = exc.field if instance is None or exc.field.startswith("instance") else f"instance.{exc.field}"
        raise _reject(field, exc.reason) from exc
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise _reject("instance" if instance is not None else "scenario", str(exc)[:500]) from exc
    assert isinstance(inst, CoRMABInstance)  # the scenario's instance class was checked above
    if inst.n_arms > limits.job_max_arms:
        raise _reject(
            "instance.n_arms" if instance is not None else "n_arms",
            f"{inst.n_arms} arms: at most {limits.job_max_arms}",
        )
    if inst.horizon > limits.job_max_horizon:
        raise _reject(
            "instance.horizon" if instance is not None else "horizon",
            f"horizon {inst.horizon}: at most {limits.job_max_horizon}",
        )
    config = validate_dqn(spec.get("config") or {}, "config", limits)
    policy_name = spec.get("policy_name")
    out = {
        "kind": "train",
        "scenario": name,
        "config": config,
        "seed": int(generator.get("seed", 0)),
        "policy_name": policy_name,
    }
    if instance is not None:
        out["instance"] = inst.model_dump(mode="json")
    else:
        out.update({k: v for k, v in generator.items() if k != "seed"})
    return out


SWEEP_CAPS = {"eval_episodes": 1000, "exact_max_arms": 8, "bound_time_limit": 600.0, "time_limit": 60.0}


def validate_sweep(spec: dict, limits: JobSettings) -> dict:
    from engine.experiments.sweep import SweepConfig
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
    if config.get("methods"):
        from engine.analysis.evaluation import method_names

        known = method_names()
        unknown_methods = [m for m in config["methods"] if m not in known]
        if unknown_methods:
            raise _reject("config.methods", f"unknown method {unknown_methods[0]!r}; known: {', '.join(known)}")
    for key in ("seeds",):
        if any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**32 for s in config.get(key) or []):
            raise _reject("config.seeds", "seeds must be integers in [0, 2**32)")
    for key, cap in (
        ("n_arms", limits.job_max_arms),
        ("train_episodes", limits.job_max_episodes),
        ("horizon", limits.job_max_horizon),
        *SWEEP_CAPS.items(),
    ):
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
