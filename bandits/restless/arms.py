"""Restless arms: the one arm model of the library (:class:`scenarios.arms.Arms`), seen as r(s, a) arrays.

``RestlessArms`` is :class:`scenarios.arms.Arms`. ``arrays()`` gives ``transitions`` (arms, actions, states,
states) with rows summing to one, ``rewards`` r(s, a) (arms, states, actions) (the expected reward of the step:
E[r(s')] for rewards paid on arrival), ``costs`` (arms, actions) strictly increasing in the action (action 0 is
the cheapest, "passive"), ``initial`` (arms, states) the initial state distribution; arms with fewer states are
padded with unreachable states.
"""

from __future__ import annotations

from scenarios.arms import Arms
from scenarios.errors import InvalidInputError

RestlessArms = Arms


def from_cormab(arms: object) -> Arms:
    """The same arms with rewards r(s, a) = E[r(s') | s, a] and explicit costs and initial distributions (the
    form the restless-bandit sessions exchange); arrays are unchanged."""
    if not isinstance(arms, Arms):
        raise InvalidInputError("arms", f"expected scenarios.arms.Arms, got {type(arms).__name__}")
    if not arms.on_arrival and arms.costs is not None and arms.initial is not None:
        return arms
    _, R, C, _ = arms.arrays()
    counts = arms.state_counts.tolist()
    init, train = arms.initial_distribution(False), arms.initial_distribution(True)
    return Arms(
        transitions=arms.transitions,
        rewards=[R[j, :n].tolist() for j, n in enumerate(counts)],
        costs=C.tolist(),
        initial=[init[j, :n].tolist() for j, n in enumerate(counts)],
        train_initial=[train[j, :n].tolist() for j, n in enumerate(counts)],
        horizon=arms.horizon,
    )
