"""Other planners as candidates for the trained policy: the engine keeps a planner that beats it on held-out
episodes, so a learned policy is never knowingly below the best planner it was measured against.

Training's snapshot selection compares the networks with the prior's own planner (:mod:`engine.sequoia.dqn`).
Planners that are not linear priors (LP-update re-solves an LP per state) or that were not chosen as the prior
(Lagrangian beside Whittle) are measured afterwards on the same validation episodes (common random numbers);
the best one whose paired gain over the chosen policy exceeds ``selection_z`` standard errors decides instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.analysis.evaluation import evaluate
from scenarios.errors import InvalidInputError


def check_planner_candidates(names: Sequence[str]) -> None:
    """Unknown planner names fail before training, naming the field (not after an hour of it)."""
    from engine.planners import PLANNERS, load_plugins

    load_plugins()
    unknown = [name for name in names if name not in PLANNERS]
    if unknown:
        raise InvalidInputError(
            "planner_candidates", f"unknown planner {unknown[0]!r}; known: {', '.join(sorted(PLANNERS))}"
        )


def significant_gain(diff: np.ndarray, selection_z: float) -> bool:
    """Whether the paired differences ``diff`` (candidate - incumbent, one per episode) have a mean above
    ``selection_z`` standard errors (never with fewer than two episodes)."""
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    return bool(diff.mean() > selection_z * se)


def better_planner(
    scenario: str,
    instance,
    names: Sequence[str],
    chosen: np.ndarray,
    seeds: Sequence[int] | np.ndarray,
    selection_z: float,
) -> tuple[str, list[float]]:
    """(name, mean returns of every candidate): the candidate with the largest paired gain over ``chosen`` (the
    selected policy's expected returns on ``seeds``) among those whose gain exceeds ``selection_z`` standard
    errors, or "" when none does."""
    from engine.planners.policy import PlannerPolicy

    best, best_gain, means = "", 0.0, []
    for name in names:
        policy = PlannerPolicy(scenario, instance, name)
        run = evaluate(instance, {name: policy}, episode_seeds=list(seeds), progress=False)
        returns = np.asarray(run.methods[name].expected, dtype=float)
        means.append(float(returns.mean()))
        diff = returns - chosen
        if significant_gain(diff, selection_z) and diff.mean() > best_gain:
            best, best_gain = name, float(diff.mean())
    return best, means
