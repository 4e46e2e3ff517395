"""What lookahead training keeps: the planner or one of its policy-iteration iterates, chosen on held-out episodes.

Every candidate (the planner, then iterates 1..K) runs on the same validation episodes (common random numbers).
Starting from the planner, each iterate in turn replaces the incumbent when its paired gain over it exceeds the
threshold. When no iterate does but the best one's mean gain over the planner is positive, the validation doubles
(new episodes, the earlier ones kept) up to ``most`` episodes: a real gain of a few tenths of a percent needs more
episodes than a large one, and the planner is kept only once the evidence is in.

On a joint state space small enough for the exact DP (``exact_selection_states``), :func:`select_exactly` replaces
the episodes: every candidate's exact expected return (DP policy evaluation from the evaluation initial
distribution, no sampling), the best kept, the planner on ties. No test is needed when nothing is sampled.

Testing K iterates at up to L looks would let a useless iterate through more often than ``z`` says (measured:
2.8% -> 5.8% with one iterate and three looks, 15.6% with three iterates). The threshold is therefore Bonferroni
corrected: the one-sided tail of ``z`` is split over the K x L tests, so a policy no better than the planner is
kept with probability at most that of a single ``z`` test (``z`` = 2: 2.3%; the threshold is 2.0 for one test,
2.43 for one iterate at three looks).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from engine.analysis.evaluation import evaluate
from engine.sequoia.planner_candidates import significant_gain

PLANNER = "planner"


@dataclass
class Selection:
    """``kept``: the index of the kept iterate (None: the planner); per-episode expected returns of every
    candidate on the ``episodes`` validation episodes used."""

    kept: int | None
    episodes: int
    returns: dict[str, np.ndarray] = field(default_factory=dict)
    exact: bool = False  # exact values (one entry per candidate), not episodes

    @property
    def method(self) -> str:
        return "exact DP policy evaluation" if self.exact else "held-out episodes"

    def mean(self, name: str) -> float:
        return float(self.returns[name].mean())

    def gain_se(self, name: str) -> float:
        """Standard error of ``name``'s paired gain over the planner."""
        if self.exact:
            return 0.0
        diff = self.returns[name] - self.returns[PLANNER]
        return float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")


def iterate_name(k: int) -> str:
    return f"iteration {k + 1}"


def corrected_z(z: float, tests: int) -> float:
    """The z threshold whose one-sided tail is that of ``z`` divided over ``tests`` tests (Bonferroni)."""
    if tests <= 1:
        return float(z)
    tail = 1.0 - NormalDist().cdf(z)
    return float(NormalDist().inv_cdf(1.0 - tail / tests))


def planned_looks(first: int, most: int) -> int:
    """How many times the validation may be tested: the first size, then each doubling up to ``most``."""
    return 1 + (math.ceil(math.log2(most / first)) if most > first else 0)


def select_policy(
    instance,
    planner,
    iterates: list,
    first: int,
    most: int,
    z: float,
    seed: int,
    progress: bool = False,
) -> Selection:
    """Choose among ``planner`` and ``iterates`` (policies with ``act``/``act_batch``) on ``first`` validation
    episodes, extended up to ``most`` while the best iterate's gain is positive but not significant; ``z`` is the
    family-wise threshold (:func:`corrected_z` over every iterate and look)."""
    most = max(first, most)
    z = corrected_z(z, planned_looks(first, most) * max(1, len(iterates)))
    seeds = np.random.default_rng([seed, 77]).integers(2**31, size=most).tolist()
    policies = {PLANNER: planner, **{iterate_name(k): p for k, p in enumerate(iterates)}}
    collected: dict[str, list[float]] = {name: [] for name in policies}
    done, n = 0, first
    while True:
        run = evaluate(instance, policies, episode_seeds=seeds[done:n], progress=progress)
        for name in policies:
            collected[name].extend(float(v) for v in run.methods[name].expected)
        done = n
        returns = {name: np.asarray(v, dtype=float) for name, v in collected.items()}
        kept: int | None = None
        for k in range(len(iterates)):
            incumbent = returns[PLANNER if kept is None else iterate_name(kept)]
            if significant_gain(returns[iterate_name(k)] - incumbent, z):
                kept = k
        best_gain = max(float((returns[iterate_name(k)] - returns[PLANNER]).mean()) for k in range(len(iterates)))
        if kept is not None or n >= most or best_gain <= 0:
            return Selection(kept, n, returns)
        n = min(2 * n, most)


def exact_selection_applies(instance, iterates: list, limit: int) -> bool:
    """Whether the candidates can be compared exactly: at most ``limit`` joint states, within the exact DP's
    size, and iterates that score every feasible action (a deterministic function of the state)."""
    from engine.analysis.exact_dp import fits

    states = float(np.prod(instance.arms.state_counts.astype(float)))
    enumerated = all(getattr(it, "scores_every_action", False) for it in iterates)
    return bool(iterates) and enumerated and states <= limit and fits(instance)


def select_exactly(instance, planner, iterates: list, progress: bool = False) -> Selection:
    """Keep the candidate with the highest exact expected return (the planner's objective maximised over every
    feasible action, each iterate's lookahead), the planner unless an iterate is higher by more than 1e-9 relative."""
    from tqdm.auto import tqdm

    from engine.analysis.exact_dp import policy_value
    from engine.analysis.exact_policy import planner_policy_value

    actions = instance.action_model().enumerate()
    values = {PLANNER: planner_policy_value(planner.planner, actions)}
    for k, it in enumerate(tqdm(iterates, desc="exact selection", unit="iterate", disable=not progress)):
        values[iterate_name(k)] = policy_value(instance, _actions_of(it), actions)
    kept: int | None = None
    for k in range(len(iterates)):
        incumbent = values[PLANNER if kept is None else iterate_name(kept)]
        if values[iterate_name(k)] > incumbent + 1e-9 * max(1.0, abs(incumbent)):
            kept = k
    returns = {name: np.array([v]) for name, v in values.items()}
    return Selection(kept, 0, returns, exact=True)


def _actions_of(iterate) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda states, time_to_go: iterate.actions(states, time_to_go)[0]
