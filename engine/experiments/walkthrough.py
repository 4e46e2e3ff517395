"""The steps the coRMAB notebooks share: yardsticks, the comparison on common random numbers, the plots.

Each notebook keeps its own narrative (problem, instance, training); these functions do the identical
comparison and plotting so that every domain's notebook reports the same figures the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.analysis.action_law_bound import tightest_upper_bound
from engine.analysis.evaluation import EnginePolicy, Evaluation, evaluate
from engine.analysis.exact_dp import exact_optimum
from engine.baselines.cormab import BASELINES
from engine.experiments.plots import (
    decision_times,
    episode_trace,
    plot_allocations,
    plot_decision_times,
    plot_learning_curve,
    plot_returns,
)

TRAINED = "Q-network, exact argmax"


class ExactPolicy:
    """The DP's optimal Markov policy (a reference, not deployable at scale)."""

    def __init__(self, exact: Any) -> None:
        self.exact = exact

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray:
        return self.exact.policy(states, time_to_go)


@dataclass
class Comparison:
    """The evaluation of every method, its dictionary form, the yardsticks and the policies compared."""

    evaluation: Evaluation
    result: dict
    exact: Any
    bound: Any
    policies: dict[str, Any]


def compare_with_baselines(engine: Any, episodes: int, seed: int = 1, progress: bool = True) -> Comparison:
    """Exact DP optimum, certified upper bound, and the trained policy vs every baseline on common random numbers;
    prints each method's share of the optimum and of the bound and the paired differences."""
    inst = engine.instance
    exact, bound = exact_optimum(inst), tightest_upper_bound(inst)
    print(f"exact optimum (DP over {4**inst.n_arms} joint states): {exact.value:.2f} in {exact.seconds:.2f} s")
    print(
        f"certified upper bound ({bound.method}): {bound.bound:.2f} in {bound.seconds:.2f} s "
        f"(relaxation gap {100 * (bound.bound - exact.value) / exact.value:.1f}% above the optimum)"
    )
    planners = planner_policies(engine)
    policies = {
        "exact DP (optimal)": ExactPolicy(exact),
        TRAINED: EnginePolicy(engine, "auto"),
        "iterative DQN (greedy)": EnginePolicy(engine, "greedy"),
        **planners,
        **{name: cls(inst) for name, cls in BASELINES.items()},
    }
    evaluation = evaluate(
        inst, policies, episodes=episodes, seed=seed, reference=TRAINED, progress=progress, scenario=engine.scenario
    )
    result = evaluation.to_dict()
    for name, stats in result["methods"].items():
        mean = stats["mean_expected_return"]
        print(
            f"{name:>24}: {mean:7.2f}  = {100 * mean / exact.value:5.1f}% of the exact optimum, "
            f"{100 * mean / bound.bound:5.1f}% of the LP bound"
        )
    best = max(planners, key=lambda name: float(np.mean(evaluation.methods[name].expected)))
    for name in (TRAINED, *planners):
        if name != best:
            diff = evaluation.paired_difference(name, best)
            print(
                f"{name:>24} minus the best planner ({best}): {diff['mean']:+7.2f}  "
                f"95% CI [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}]"
            )
    return Comparison(evaluation, result, exact, bound, policies)


def planner_policies(engine: Any) -> dict[str, Any]:
    """Every planner that applies to the engine's instance, as evaluation policies keyed by readable names."""
    from engine.analysis.evaluation import METHOD_LABELS, method_names
    from engine.planners import PLANNERS
    from engine.planners.policy import PlannerPolicy

    return {
        METHOD_LABELS[name]: PlannerPolicy(engine.scenario, engine.instance, name)
        for name in method_names(engine.instance)
        if name in PLANNERS
    }


def plot_overview(comparison: Comparison, training_returns: list[float], window: int) -> Any:
    """Learning curve (with the optimum and myopic as lines), returns with 95% intervals, decision times."""
    import matplotlib.pyplot as plt

    c = comparison
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
    plot_learning_curve(
        training_returns,
        ax=axes[0],
        window=max(2, window),
        reference={"exact optimum": c.exact.value, "myopic": float(np.mean(c.evaluation.methods["myopic"].expected))},
    )
    axes[0].set_ylabel("expected return (training episodes)")
    plot_returns(c.evaluation, ax=axes[1], upper_bound=c.bound.bound, optimum=c.exact.value)
    plot_decision_times(decision_times(c.evaluation), ax=axes[2])
    fig.tight_layout()
    return fig


def plot_allocation_pair(comparison: Comparison, names: tuple[str, str] = (TRAINED, "myopic"), seed: int = 3) -> Any:
    """One evaluation episode of two methods: arm states over time with the pulled arms marked."""
    import matplotlib.pyplot as plt

    instance = comparison.policies[TRAINED].engine.instance
    fig, axes = plt.subplots(1, 2, figsize=(15, 3.2))
    for ax, name in zip(axes, names, strict=True):
        trace = episode_trace(instance, comparison.policies[name], seed=seed)
        plot_allocations(
            trace["actions"][:, : instance.n_arms],
            trace["states"],
            ax=ax,
            title=f"{name}: return {trace['expected'].sum():.1f}",
        )
    fig.tight_layout()
    return fig
