"""Evaluation with common random numbers: every method sees the same initial states and the same
uniform draws per (episode, step, arm). Returns are per episode (realised and expected), with bootstrap
95% intervals over episodes and paired differences against a reference method."""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from engine.analysis.lockstep import lockstep_policy, observation_rows, run_lockstep
from engine.decision import Decision
from engine.protocols import VectorisedBatches


class Policy(Protocol):
    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray | Decision: ...


class EnginePolicy:
    """An Engine and a selector as a policy (``mip`` = SEQUOIA, ``greedy`` = iterative DQN); any policy with
    ``decide`` / ``decide_batch`` (a planner too) fits. Evaluated in lock step (:mod:`engine.analysis.lockstep`)
    when the policy ``vectorises`` the selector."""

    def __init__(self, engine, selector: str = "mip", time_limit: float | None = None) -> None:
        self.engine, self.selector, self.time_limit = engine, selector, time_limit

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> Decision:
        obs = np.concatenate([states, [time_to_go]])
        return self.engine.decide(obs, selector=self.selector, time_limit=self.time_limit)

    def act_batch(
        self, states: np.ndarray, time_to_go: np.ndarray | int, rngs: Sequence[np.random.Generator]
    ) -> list[Decision]:
        """One decision per row of ``states`` (E, J), each the one :meth:`act` returns for it."""
        rows = observation_rows(states, time_to_go)
        return self.engine.decide_batch(rows, selector=self.selector, time_limit=self.time_limit)

    def acts_in_batches(self) -> bool:
        """Whether the engine decides this selector's batches at once (else episodes run one by one)."""
        return isinstance(self.engine, VectorisedBatches) and self.engine.vectorises(self.selector)


def pct_of(value: float, reference: float | None) -> float | None:
    """``value`` as a % of ``reference`` (a bound or an optimum); None where there is none: missing, zero, or not
    finite (an LP stopped before it bounded anything reports an infinite bound, not 0%)."""
    if reference is None or not np.isfinite(reference) or reference == 0:
        return None
    return 100.0 * float(value) / float(reference)


def bootstrap_ci(values: np.ndarray, seed: int = 0, n_resamples: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return float(values.mean()), float(values.mean())
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (n_resamples, values.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class MethodResult:
    name: str
    realised: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    decision_seconds: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    gaps: list[float] = field(default_factory=list)

    def record(self, out: np.ndarray | Decision, seconds: float) -> np.ndarray:
        """Record one decision (its time; a Decision's status and gap too) and return its action."""
        self.decision_seconds.append(seconds)
        if not isinstance(out, Decision):
            return out
        self.statuses[out.status] = self.statuses.get(out.status, 0) + 1
        self.gaps.append(out.gap)
        return out.action

    def summary(self) -> dict:
        exp, real = np.asarray(self.expected), np.asarray(self.realised)
        secs = np.asarray(self.decision_seconds) if self.decision_seconds else np.zeros(1)
        gaps = np.asarray([g for g in self.gaps if np.isfinite(g)])
        return {
            "mean_expected_return": float(exp.mean()),
            "ci95_expected_return": bootstrap_ci(exp),
            "mean_realised_return": float(real.mean()),
            "ci95_realised_return": bootstrap_ci(real),
            "decision_seconds": {
                "median": float(np.median(secs)),
                "p95": float(np.percentile(secs, 95)),
                "mean": float(secs.mean()),
                "max": float(secs.max()),
            },
            "statuses": dict(self.statuses),
            "median_gap": float(np.median(gaps)) if gaps.size else None,
            "max_gap": float(gaps.max()) if gaps.size else None,
        }


@dataclass
class Evaluation:
    scenario: str
    seed: int
    episodes: int
    methods: dict[str, MethodResult]
    reference: str | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def paired_difference(self, method: str, other: str) -> dict:
        """Mean and 95% bootstrap interval of (method - other) per episode, on expected returns."""
        d = np.asarray(self.methods[method].expected) - np.asarray(self.methods[other].expected)
        lo, hi = bootstrap_ci(d, seed=1)
        base = float(np.mean(self.methods[other].expected))
        return {"mean": float(d.mean()), "ci95": (lo, hi), "relative": float(d.mean() / abs(base)) if base else None}

    def to_dict(self) -> dict:
        out = {
            "scenario": self.scenario,
            "seed": self.seed,
            "episodes": self.episodes,
            "seconds": self.seconds,
            "methods": {name: r.summary() for name, r in self.methods.items()},
            "per_episode_expected": {name: r.expected for name, r in self.methods.items()},
            **self.extra,
        }
        if self.reference and self.reference in self.methods:
            out["reference"] = self.reference
            out["paired_vs_reference"] = {
                name: self.paired_difference(self.reference, name) for name in self.methods if name != self.reference
            }
        return out


def evaluate(
    instance,
    policies: Mapping[str, Policy],
    episodes: int = 50,
    seed: int = 0,
    reference: str | None = None,
    progress: bool = True,
    scenario: str = "",
    episode_seeds: Sequence[int] | None = None,
    batched: bool = True,
) -> Evaluation:
    """Run every policy on the same ``episodes`` (common random numbers) and collect per-episode returns.

    Episode ``e`` resets the environment with ``episode_seeds[e]`` when given (then ``episodes`` is their
    number), else with ``seed * 1_000_003 + e``. With ``batched``, a policy that decides batches at once
    (:func:`engine.analysis.lockstep.runs_in_lockstep`) runs its episodes in lock step, one batch decision per
    step (the same returns, statuses and gaps; each decision's seconds the batch's over its states); False
    runs every policy episode by episode."""
    start = time.perf_counter()
    if episode_seeds is None:
        episode_seeds = [seed * 1_000_003 + episode for episode in range(episodes)]
    episodes = len(episode_seeds)
    env = instance.make_env()
    lockstep_envs: list = []  # one per episode, built once for every policy run in lock step
    results = {name: MethodResult(name) for name in policies}
    total = episodes * len(policies)
    bar = tqdm(
        total=total,
        desc=f"evaluate {scenario or 'instance'}",
        disable=not progress,
        unit="episode",
        bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} episodes [{elapsed}<{remaining}{postfix}]",
    )
    for name, policy in policies.items():
        method_seed = zlib.crc32(name.encode())
        in_batches = lockstep_policy(policy) if batched else None
        if in_batches is not None:
            rngs = [np.random.default_rng([seed, episode, method_seed]) for episode in range(episodes)]
            bar.set_postfix_str(f"{name} (lock step)")
            lockstep_envs = lockstep_envs or [env, *(instance.make_env() for _ in range(episodes - 1))][:episodes]
            run_lockstep(instance, in_batches, episode_seeds, rngs, results[name], bar, lockstep_envs)
            continue
        bar.set_postfix_str(name)
        for episode in range(episodes):
            obs, _ = env.reset(seed=int(episode_seeds[episode]))
            rng = np.random.default_rng([seed, episode, method_seed])
            realised = expected = 0.0
            done = False
            while not done:
                t0 = time.perf_counter()
                out = policy.act(obs[:-1], int(obs[-1]), rng)
                seconds = time.perf_counter() - t0
                action = results[name].record(out, seconds)
                obs, reward, done, _, info = env.step(action)
                realised += reward
                expected += info["expected_reward"]
            results[name].realised.append(realised)
            results[name].expected.append(expected)
            bar.update(1)
    bar.close()
    return Evaluation(scenario, seed, episodes, results, reference, time.perf_counter() - start)


def evaluate_engine(
    engine,
    episodes: int = 50,
    seed: int = 0,
    methods: list[str] | None = None,
    progress: bool = True,
    time_limit: float | None = None,
    bound: bool = True,
) -> dict:
    """Evaluate a trained engine (exact argmax ``dqn_mip`` and greedy ``iterative_dqn``) against the
    planners and every baseline on common random numbers; ``methods`` keeps a subset. Returns
    :meth:`Evaluation.to_dict` plus the best planner and every method's paired difference against it, the
    certified upper bound (``bound``) with each method's % of it, and the policy version. Shared by
    ``redwood evaluate``, ``redwood quickstart`` and the sweep."""
    from scenarios.errors import InvalidInputError

    names = method_names(engine.instance, engine)
    not_applicable: list[str] = []
    if methods:
        every = set(method_names()) | set(names)
        unknown = sorted(set(methods) - every)
        if unknown:
            raise InvalidInputError("methods", f"unknown methods {unknown}; known: {sorted(every)}")
        # known, but not for this instance (Whittle where actions are not pulls, action_law beyond its listing
        # size, the lookahead's own method on a DQN engine): recorded, not evaluated
        not_applicable = [k for k in methods if k not in names]
        names = [k for k in names if k in methods]
    policies = {name: make_method(name, engine, time_limit) for name in names}
    reference = next((name for name in (*ENGINE_METHODS, *LOOKAHEAD_METHODS) if name in policies), None)
    run = evaluate(
        engine.instance,
        policies,
        episodes=episodes,
        seed=seed,
        reference=reference,
        progress=progress,
        scenario=engine.scenario,
    )
    result = run.to_dict()
    planners = [name for name in policies if name in PLANNER_METHODS]
    if planners:
        best = max(planners, key=lambda name: float(np.mean(run.methods[name].expected)))
        result["best_planner"] = best
        result["paired_vs_best_planner"] = {
            name: run.paired_difference(name, best) for name in policies if name != best
        }
    if not_applicable:
        result["methods_not_applicable"] = not_applicable
    if bound:  # the certified bound (occupancy LP, with the action law when the feasible set is small)
        from engine.analysis.action_law_bound import tightest_upper_bound

        ub = tightest_upper_bound(engine.instance)
        result["upper_bound"] = float(ub.bound) if np.isfinite(ub.bound) else None  # None: no bound proven
        result["upper_bound_method"] = ub.method
        result["upper_bound_status"] = ub.status
        for summary in result["methods"].values():
            summary["pct_of_upper_bound"] = pct_of(summary["mean_expected_return"], ub.bound)
    result["policy_version"] = engine.policy_version
    return result


#: planner methods of an evaluation (engine/planners): index and LP policies that need no training
PLANNER_METHODS = ("whittle", "lagrangian", "action_law", "lp_update")
#: the trained engine's own methods: its exact argmax and its greedy ascent
ENGINE_METHODS = ("dqn_mip", "iterative_dqn")
#: a lookahead policy's own method (engine/lookahead): the planner improved by lookahead on a learned value
LOOKAHEAD_METHODS = ("lookahead",)
#: human-readable method names for tables and plots
METHOD_LABELS = {
    "dqn_mip": "trained (exact argmax)",
    "lookahead": "planner + learned lookahead",
    "iterative_dqn": "trained (greedy)",
    "whittle": "Whittle index + MILP",
    "lagrangian": "Lagrangian + MILP",
    "action_law": "Lagrangian (action-law prices) + MILP",
    "lp_update": "LP-update (MPC)",
    "null": "null",
    "random": "random",
    "sampling": "best of 100 samples",
    "myopic": "myopic (exact)",
    "iterative_myopic": "myopic (greedy)",
}


def method_names(instance=None, policy=None) -> list[str]:
    """Every evaluation method (the planners that apply to ``instance`` when it is given; a lookahead ``policy``
    is evaluated as itself instead of the trained engine's two methods; with neither, every name)."""
    from engine.baselines.cormab import BASELINES
    from engine.planners import PLANNERS

    planners = [name for name in PLANNER_METHODS if instance is None or PLANNERS[name].applies(instance)]
    own: tuple[str, ...] = LOOKAHEAD_METHODS if getattr(policy, "kind", None) == "lookahead" else ENGINE_METHODS
    if instance is None and policy is None:  # every name (the CLI's choices)
        own = (*ENGINE_METHODS, *LOOKAHEAD_METHODS)
    return [*own, *planners, *BASELINES]


def make_method(name: str, engine, time_limit: float | None = None) -> Policy:
    """The evaluation policy ``name`` for ``engine``'s instance."""
    from engine.baselines.cormab import BASELINES
    from engine.planners.policy import PlannerPolicy

    if name in LOOKAHEAD_METHODS:
        return engine
    if name == "dqn_mip":
        return EnginePolicy(engine, "auto", time_limit)
    if name == "iterative_dqn":
        return EnginePolicy(engine, "greedy")
    if name in PLANNER_METHODS:
        return PlannerPolicy(engine.scenario, engine.instance, name)
    return BASELINES[name](engine.instance)
