"""Action-law planner: the Lagrangian index policy with its prices read from the action-law LP.

The Lagrangian planner (:mod:`engine.planners.lagrangian`) prices each arm through the occupancy LP's link row
sum_i w_ji q_ti = E[x_jt]: one price per unit of control, so an arm's future value is linear in how many
interventions reach it. Where the response is a sigmoid (one intervention does little, two or three much more)
that price cannot tell them apart. The action-law LP (:mod:`engine.analysis.action_law_bound`) ties each arm's
value marginal P(x_jt = v) to the law of the joint action, and its duals give one price per (step, arm, value).
With those prices the LP separates into one DP per arm as before; the decision maximises

    table[j, v] = e_j(s_j, v) + E[ V_j(t + 1, s'_j) | x_j = v ]

jointly over the feasible set, exactly like the Lagrangian planner. Applies when the feasible set lists within
``max_actions`` (default 20,000, at most 200,000: the LP prices every listed action at every round of its column
generation); the fit must converge within ``fit_time_limit`` seconds (default 600), else it is refused, naming the
planner, rather than deciding with the prices of an unfinished LP.
"""

from __future__ import annotations

import weakref
from typing import Any

from engine.analysis.action_law_bound import LIST_SECONDS, action_law_upper_bound
from engine.planners.lagrangian import LagrangianPlanner, priced_values
from scenarios.errors import EnumerationTimeoutError, InvalidInputError

#: the default largest feasible set the planner lists, and the largest it accepts
MAX_ACTIONS = 20_000
ACTIONS_CAP = 200_000
#: per instance object (weakly held): whether its feasible set lists within MAX_ACTIONS
_APPLIES: dict[int, bool] = {}


def applies(instance) -> bool:
    """Whether the instance's feasible set lists within ``MAX_ACTIONS`` actions: its cheap count bound, else a count
    stopped after :data:`~engine.analysis.action_law_bound.LIST_SECONDS` (long enough not to depend on the load; the
    cheap bound is loose for capacity or patrol sets). Memoised per instance object."""
    key = id(instance)
    if key not in _APPLIES:
        model = instance.action_model()
        fits = model.count_upper_bound() <= MAX_ACTIONS
        if not fits:
            try:
                model.enumerate(max_count=MAX_ACTIONS, max_seconds=LIST_SECONDS)
                fits = True
            except (ValueError, EnumerationTimeoutError):
                fits = False
        _APPLIES[key] = fits
        weakref.finalize(instance, _APPLIES.pop, key, None)
    return _APPLIES[key]


class ActionLawPlanner(LagrangianPlanner):
    name = "action_law"
    option_names = ("max_actions", "fit_time_limit")
    fallback = "lagrangian"

    @classmethod
    def applies(cls, instance) -> bool:
        """Where the feasible set lists within :data:`MAX_ACTIONS` (see :func:`applies`)."""
        return applies(instance)

    def __init__(self, instance, max_actions: int = MAX_ACTIONS, fit_time_limit: float = 600.0, **options: Any) -> None:
        if isinstance(max_actions, bool) or not isinstance(max_actions, int) or not 1 <= max_actions <= ACTIONS_CAP:
            raise InvalidInputError("max_actions", f"expected an integer in [1, {ACTIONS_CAP}], got {max_actions!r}")
        if isinstance(fit_time_limit, bool) or not isinstance(fit_time_limit, int | float) or not fit_time_limit > 0:
            raise InvalidInputError("fit_time_limit", f"expected positive seconds, got {fit_time_limit!r}")
        super().__init__(instance, max_actions=max_actions, fit_time_limit=fit_time_limit, **options)
        self.max_actions, self.fit_time_limit = max_actions, float(fit_time_limit)
        #: the action-law LP's certified bound and whether its column generation converged (set by fit)
        self.bound: float | None = None
        self.converged: bool | None = None

    def _fit(self) -> None:
        try:
            law = action_law_upper_bound(self.instance, time_limit=self.fit_time_limit, max_actions=self.max_actions)
        except ValueError as err:
            raise InvalidInputError(
                "planner", f"action_law: {err}; the 'lagrangian' planner has no such limit"
            ) from err
        if not law.converged:  # prices of a restricted LP (elastic rows still active) would mislead every decision
            raise InvalidInputError(
                "planner",
                f"action_law: the action-law LP did not converge ({law.status} after {law.rounds} rounds); "
                "raise fit_time_limit or use the 'lagrangian' planner",
            )
        self.bound, self.converged = law.bound, law.converged
        self._values = priced_values(self.structure.reward, law.mu_price, self.structure)
