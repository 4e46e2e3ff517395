"""Multi-domain evaluation sweep: domains x seeds, each task trains a policy and evaluates every method.

One task is a pure function of (config, domain, seed): make the instance, train the DQN, evaluate it and
every baseline on common random numbers, compute the certified upper bound (the occupancy LP, tightened by the
joint action law when the feasible set is small: engine.analysis.action_law_bound) and, on tiny instances, the
exact DP optimum, and report each method's mean expected return as a percentage of them.
Tasks take and return plain data, so any executor (serial, Ray) gives the same numbers; only the
wall-clock fields (keys containing ``seconds``) differ. :func:`aggregate` summarises per domain across
seeds: mean return per method with 95% intervals, the trained policy's paired gain over the best
baseline, and the percentages of the bound.

    sweep = run_sweep(SweepConfig(seeds=(0, 1, 2)), make_executor("ray"))
    write_outputs(sweep, json_path="sweep.json", markdown_path="sweep.md", plot_path="sweep.png")
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.analysis.evaluation import PLANNER_METHODS, pct_of
from engine.experiments.sweep_summary import aggregate
from scenarios.errors import InvalidInputError
from scenarios.registry import SCENARIOS

#: the allocation scenarios a sweep can train the DQN on (the integer-box ones train the actor-critic)
DOMAINS = tuple(name for name, path in SCENARIOS.items() if path.startswith("scenarios.cormab."))
#: the most LP solves an exact evaluation of a trained engine that decides with LP-update may take
EXACT_LP_SOLVES = 20_000
#: the default: the reference's four benchmark domains (the README's tables)
BENCHMARK_DOMAINS = ("capacity", "scheduling", "routing", "multi_intervention")


@dataclass
class SweepConfig:
    """Everything a task needs besides (domain, seed); ``dqn`` overrides :class:`DQNConfig` fields."""

    domains: tuple[str, ...] = BENCHMARK_DOMAINS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_arms: int = 20
    budget: int = 5
    horizon: int = 20
    train_episodes: int = 100
    eval_episodes: int = 50
    methods: tuple[str, ...] | None = None
    dqn: dict = field(default_factory=dict)
    time_limit: float | None = None  # per dqn_mip decision during evaluation
    exact_max_arms: int = 6  # exact DP optimum when n_arms <= this (0: never)
    scenario: dict = field(default_factory=dict)  # more instance-generator parameters (e.g. n_actions)
    bound_time_limit: float = 600.0

    def __post_init__(self) -> None:
        self.domains = tuple(self.domains)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.methods = tuple(self.methods) if self.methods else None
        self.validate()

    def validate(self) -> None:
        from engine.sequoia.dqn_config import DQNConfig

        if not self.domains:
            raise InvalidInputError("domains", "give at least one domain")
        unknown = [d for d in self.domains if d not in DOMAINS]
        if unknown:
            raise InvalidInputError("domains", f"unknown domains {unknown}; known: {', '.join(DOMAINS)}")
        if len(set(self.domains)) != len(self.domains):
            raise InvalidInputError("domains", "each domain at most once")
        if not self.seeds:
            raise InvalidInputError("seeds", "give at least one seed")
        if any(s < 0 for s in self.seeds):
            raise InvalidInputError("seeds", f"seeds must be non-negative, got {list(self.seeds)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise InvalidInputError("seeds", "each seed at most once")
        for name, low in (
            ("n_arms", 1),
            ("budget", 1),
            ("horizon", 1),
            ("train_episodes", 0),
            ("eval_episodes", 1),
            ("exact_max_arms", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidInputError(name, f"must be an integer >= {low}, got {value!r}")
        for name in ("time_limit", "bound_time_limit"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise InvalidInputError(name, f"must be a positive number of seconds, got {value!r}")
        bad = sorted((set(self.dqn) - set(DQNConfig.__dataclass_fields__)) | ({"episodes"} & set(self.dqn)))
        if bad:
            raise InvalidInputError("dqn", f"unknown or reserved DQNConfig fields {bad} (use train_episodes)")
        if self.methods:  # names checked before any training (a planner that does not apply is recorded, not run)
            from engine.analysis.evaluation import method_names

            known = method_names()
            unknown_methods = [m for m in self.methods if m not in known]
            if unknown_methods:
                raise InvalidInputError("methods", f"unknown methods {unknown_methods}; known: {', '.join(known)}")
        self._validate_scenario()

    def _validate_scenario(self) -> None:
        """Every ``scenario`` key is a generator parameter of every swept domain (checked before any work)."""
        import inspect

        from scenarios import instance_class

        reserved = sorted({"n_arms", "budget", "seed", "horizon"} & set(self.scenario))
        if reserved:
            raise InvalidInputError("scenario", f"{reserved} have their own options (n_arms, budget, seeds, horizon)")
        for domain in self.domains:
            accepted = set(inspect.signature(instance_class(domain).generate).parameters)
            unknown = sorted(set(self.scenario) - accepted)
            if unknown:
                raise InvalidInputError("scenario", f"{domain} does not take {unknown}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["domains"], d["seeds"] = list(self.domains), list(self.seeds)
        d["methods"] = list(self.methods) if self.methods else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SweepConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def tasks(self) -> list[dict]:
        """Plain-data tasks, domain-major."""
        config = self.to_dict()
        return [{"config": config, "domain": d, "seed": s} for d in self.domains for s in self.seeds]


# ------------------------------------------------------------------------------------------ one task
def run_task(task: dict) -> dict:
    """Train and evaluate one (domain, seed); a pure function of the task, returning plain data. Runs
    torch on one thread (restoring the caller's setting afterwards)."""
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        return _run_task(task)
    finally:
        torch.set_num_threads(threads)


def _run_task(task: dict) -> dict:
    import torch

    from engine import DQNConfig
    from engine.analysis.action_law_bound import tightest_upper_bound
    from engine.analysis.evaluation import evaluate_engine
    from engine.engine import train_dqn
    from scenarios import make

    start, cpu_start = time.perf_counter(), time.process_time()
    cfg = SweepConfig.from_dict(task["config"])
    domain, seed = task["domain"], int(task["seed"])
    torch.manual_seed(seed)
    env = make(domain, n_arms=cfg.n_arms, budget=cfg.budget, seed=seed, horizon=cfg.horizon, **cfg.scenario)
    dqn = DQNConfig.from_dict({**DQNConfig().to_dict(), **cfg.dqn, "episodes": cfg.train_episodes})
    engine = train_dqn(env, dqn, seed=seed, progress=False)
    trained_at = time.perf_counter()
    result = evaluate_engine(
        engine,
        cfg.eval_episodes,
        seed,
        list(cfg.methods) if cfg.methods else None,
        progress=False,
        time_limit=cfg.time_limit,
        bound=False,
    )
    evaluated_at = time.perf_counter()
    bound = tightest_upper_bound(engine.instance, time_limit=cfg.bound_time_limit)
    bound_at = time.perf_counter()
    result.update(
        {
            "domain": domain,
            "n_arms": cfg.n_arms,
            "budget": cfg.budget,
            "horizon": cfg.horizon,
            "n_actions": int(engine.instance.n_actions),
            "scenario": dict(cfg.scenario),
            "upper_bound": float(bound.bound) if np.isfinite(bound.bound) else None,  # None: no bound proven
            "upper_bound_info": {
                "method": bound.method,
                "converged": bool(bound.converged),
                "status": bound.status,
                "seconds": bound.seconds,
            },
            "exact_optimum": None,
        }
    )
    for summary in result["methods"].values():
        summary["pct_of_upper_bound"] = pct_of(summary["mean_expected_return"], bound.bound)
    from engine.analysis.exact_dp import fits

    result["exact_skipped"] = None
    if cfg.n_arms <= cfg.exact_max_arms and not fits(engine.instance):
        result["exact_skipped"] = "joint state space too large for the exact DP (arms with more states)"
    elif cfg.n_arms <= cfg.exact_max_arms:
        from engine.analysis.exact_dp import exact_optimum
        from engine.analysis.exact_policy import greedy_policy_value, planner_policy_value
        from engine.planners import PLANNERS, make_planner

        exact = exact_optimum(engine.instance)
        result["exact_optimum"] = float(exact.value)
        for summary in result["methods"].values():
            summary["pct_of_exact_optimum"] = pct_of(summary["mean_expected_return"], result["exact_optimum"])
        # the trained greedy policy evaluated exactly (no sampling noise), unless it decides with a planner that
        # solves an LP per state (LP-update kept by the final choice) over more states than EXACT_LP_SOLVES
        solves = float(np.prod(engine.instance.arms.state_counts.astype(float))) * cfg.horizon
        planner = getattr(getattr(engine, "planner", None), "planner", None)
        if planner is not None and not planner.can_be_prior and solves > EXACT_LP_SOLVES:
            result["trained_exact_skipped"] = (
                f"decides with {planner.name}: one LP per joint state and time to go ({solves:.0f} > {EXACT_LP_SOLVES})"
            )
        else:
            result["trained_exact_value"] = greedy_policy_value(engine, exact)
            result["trained_pct_of_exact_optimum"] = pct_of(result["trained_exact_value"], exact.value)
        result["planner_exact_pct_of_optimum"] = {
            name: pct_of(planner_policy_value(make_planner(name, engine.instance), exact), exact.value)
            for name in result["methods"]
            if name in PLANNER_METHODS and PLANNERS[name].can_be_prior
        }  # (LP-update re-solves an LP per state: too many states to evaluate exactly)
    s = engine.training_summary
    result["training"] = {
        "episodes": cfg.train_episodes,
        "seconds": s.get("seconds"),
        "act_decisions": s.get("act_decisions"),
        "warm_start_loss": s.get("warm_start_loss"),
        "last10_mean_return": float(np.mean(s["episode_returns"][-10:])) if s.get("episode_returns") else None,
        # what decides: a trained snapshot (0 = the prior's own), the prior's planner or a candidate planner
        "selected_snapshot": s.get("selected_snapshot"),
        "kept_planner": bool(s.get("kept_planner")),
        "kept_planner_name": s.get("kept_planner_name", ""),
        "final_returns": s.get("final_returns", {}),
        "final_episodes": s.get("final_episodes", 0),
    }
    end = time.perf_counter()
    result["timings"] = {
        "train_seconds": trained_at - start,
        "evaluate_seconds": evaluated_at - trained_at,
        "bound_seconds": bound_at - evaluated_at,
        "exact_seconds": end - bound_at,
        "total_seconds": end - start,
        "cpu_seconds": time.process_time() - cpu_start,
    }
    return _plain(result)


def _plain(obj: Any) -> Any:
    """JSON-ready copy: tuples -> lists, numpy scalars -> Python numbers."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def comparable(obj: Any) -> Any:
    """``obj`` without wall-clock fields (keys containing ``seconds``, and ``timings``): what must be
    identical whichever executor ran the task."""
    if isinstance(obj, dict):
        return {k: comparable(v) for k, v in obj.items() if "seconds" not in k and k != "timings"}
    if isinstance(obj, list):
        return [comparable(v) for v in obj]
    return obj


# ------------------------------------------------------------------------------------ the sweep
def run_sweep(config: SweepConfig, executor=None, progress: bool = True) -> dict:
    """Run every (domain, seed) task on ``executor`` (default serial) and aggregate."""
    from engine.experiments.executors import SerialExecutor

    executor = executor or SerialExecutor(progress)
    start = time.perf_counter()
    results = executor.map(run_task, config.tasks(), desc="sweep")
    return {
        "config": config.to_dict(),
        "seconds": time.perf_counter() - start,
        "executor": type(executor).__name__,
        "summary": _plain(aggregate(results)),
        "tasks": results,
    }


def write_outputs(
    sweep: dict,
    json_path: str | Path | None = None,
    markdown_path: str | Path | None = None,
    plot_path: str | Path | None = None,
) -> str:
    """Write the JSON, the markdown table and the plot (each optional); returns the markdown."""
    from engine.experiments.report import plot_sweep, sweep_markdown

    if json_path:
        Path(json_path).write_text(json.dumps(sweep, indent=2))
    table = sweep_markdown(sweep["summary"])
    if markdown_path:
        Path(markdown_path).write_text(table)
    if plot_path:
        plot_sweep(sweep["summary"], plot_path)
    return table


# ------------------------------------------------------------------------ training several seeds
def train_task(task: dict) -> dict:
    """Train one seed and return the checkpoint as file contents (written by the caller, so a remote
    worker's filesystem does not matter). Task keys: scenario, seed, config (DQNConfig dict), and either
    instance (JSON text) or n_arms/budget."""
    import torch

    from engine import DQNConfig
    from engine.engine import train_dqn
    from scenarios import make

    torch.set_num_threads(1)
    torch.manual_seed(int(task["seed"]))
    if task.get("instance"):
        env = make(task["scenario"], instance=task["instance"])
    else:
        env = make(task["scenario"], n_arms=task["n_arms"], budget=task["budget"], seed=task["seed"])
    engine = train_dqn(env, DQNConfig.from_dict(task["config"]), seed=int(task["seed"]), progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = engine.save(Path(tmp) / "ckpt")
        files = {p.name: p.read_bytes() for p in Path(path).iterdir() if p.is_file()}
    s = engine.training_summary
    return {
        "seed": int(task["seed"]),
        "files": files,
        "policy_version": engine.policy_version,
        "seconds": s["seconds"],
        "act_decisions": s["act_decisions"],
        "last10_mean_return": float(np.mean(s["episode_returns"][-10:])) if s["episode_returns"] else None,
    }
