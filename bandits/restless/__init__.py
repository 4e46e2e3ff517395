"""Restless bandits: arm models, Whittle indices, index / repair / Lagrangian policies, LP bound, learning."""

from bandits.restless.arms import RestlessArms, from_cormab
from bandits.restless.exact import joint_optimal_value, joint_policy_value
from bandits.restless.indexability import check_indexability
from bandits.restless.lagrangian_policy import LagrangianPolicy
from bandits.restless.learning import LearningWhittlePolicy
from bandits.restless.lp_bound import LPBound
from bandits.restless.policy import RestlessPolicy
from bandits.restless.repair_policy import WhittleRepairPolicy
from bandits.restless.simulator import RestlessSimulator, simulate
from bandits.restless.whittle import WhittleIndices, whittle_indices
from bandits.restless.whittle_policy import WhittlePolicy

__all__ = [
    "LPBound",
    "LagrangianPolicy",
    "LearningWhittlePolicy",
    "RestlessArms",
    "RestlessPolicy",
    "RestlessSimulator",
    "WhittleIndices",
    "WhittlePolicy",
    "WhittleRepairPolicy",
    "check_indexability",
    "from_cormab",
    "joint_optimal_value",
    "joint_policy_value",
    "simulate",
    "whittle_indices",
]
