"""Combinatorial semi-bandits: CUCB, Thompson, linear and neural variants, oracles, off-policy evaluation."""

from bandits.combinatorial.base import SemiBanditPolicy
from bandits.combinatorial.cucb import CUCB
from bandits.combinatorial.linear import LinearThompson, LinUCB
from bandits.combinatorial.neural import NeuralThompson, NeuralUCB
from bandits.combinatorial.off_policy import OffPolicyEstimate, doubly_robust, ips, marginal_ips, snips
from bandits.combinatorial.oracles import (
    ActionModelOracle,
    KnapsackOracle,
    MatchingOracle,
    Oracle,
    OracleResult,
    TopKOracle,
)
from bandits.combinatorial.selection import Selection
from bandits.combinatorial.simulator import (
    BernoulliSemiBandit,
    ContextualSemiBandit,
    GaussianSemiBandit,
    SemiBanditEnvironment,
)
from bandits.combinatorial.thompson import CombinatorialThompson

POLICIES = {cls.kind: cls for cls in (CUCB, CombinatorialThompson, LinUCB, LinearThompson, NeuralUCB, NeuralThompson)}


def load_policy(path):
    """Load any saved semi-bandit policy, dispatching on the kind recorded in its state."""
    from bandits.persistence import load_state

    kind, meta, arrays = load_state(path)
    if kind not in POLICIES:
        from scenarios.errors import InvalidInputError

        raise InvalidInputError("kind", f"unknown semi-bandit policy {kind!r}")
    return POLICIES[kind].from_state(meta, arrays)


__all__ = [
    "CUCB",
    "POLICIES",
    "ActionModelOracle",
    "BernoulliSemiBandit",
    "CombinatorialThompson",
    "ContextualSemiBandit",
    "GaussianSemiBandit",
    "KnapsackOracle",
    "LinUCB",
    "LinearThompson",
    "MatchingOracle",
    "NeuralThompson",
    "NeuralUCB",
    "OffPolicyEstimate",
    "Oracle",
    "OracleResult",
    "Selection",
    "SemiBanditEnvironment",
    "SemiBanditPolicy",
    "TopKOracle",
    "doubly_robust",
    "ips",
    "load_policy",
    "marginal_ips",
    "snips",
]
