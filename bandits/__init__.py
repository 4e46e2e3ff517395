"""Restless and combinatorial bandits, with this project's solvers as oracles.

    from bandits import whittle_indices, WhittlePolicy, LPBound, CUCB, TopKOracle
    from bandits.experiments import run_regret, plot_regret
"""

from bandits.action_models import budget_action_model
from bandits.combinatorial import (
    CUCB,
    ActionModelOracle,
    BernoulliSemiBandit,
    CombinatorialThompson,
    ContextualSemiBandit,
    GaussianSemiBandit,
    KnapsackOracle,
    LinearThompson,
    LinUCB,
    MatchingOracle,
    NeuralThompson,
    NeuralUCB,
    Selection,
    TopKOracle,
    doubly_robust,
    ips,
    marginal_ips,
    snips,
)
from bandits.restless import (
    LagrangianPolicy,
    LearningWhittlePolicy,
    LPBound,
    RestlessArms,
    RestlessSimulator,
    WhittleIndices,
    WhittlePolicy,
    WhittleRepairPolicy,
    check_indexability,
    from_cormab,
    simulate,
    whittle_indices,
)

__all__ = [
    "CUCB", "ActionModelOracle", "BernoulliSemiBandit", "CombinatorialThompson", "ContextualSemiBandit",
    "GaussianSemiBandit", "KnapsackOracle", "LPBound", "LagrangianPolicy", "LearningWhittlePolicy", "LinUCB",
    "LinearThompson", "MatchingOracle", "NeuralThompson", "NeuralUCB", "RestlessArms", "RestlessSimulator",
    "Selection", "TopKOracle", "WhittleIndices", "WhittlePolicy", "WhittleRepairPolicy", "budget_action_model",
    "check_indexability", "doubly_robust", "from_cormab", "ips", "marginal_ips", "simulate", "snips",
    "whittle_indices",
]
