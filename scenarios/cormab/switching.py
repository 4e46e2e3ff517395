"""Switching costs: arms pulled under a budget, paying to start or stop pulling an arm (issue 16, item 3).

A resource's state persists across steps: pulling an arm that was idle on the previous step costs
``on_cost``, leaving idle an arm that was pulled costs ``off_cost``. Each arm's state is the pair (x, b) of its
engagement state x and whether it was pulled on the previous step (state index ``2 x + b``; see
:func:`scenarios.switching_arms.with_switching_cost`), so the instance is a
:class:`~scenarios.cormab.budgeted.BudgetedInstance` on augmented arms: the environment, the encoder, the
MILPs, the exact DP and the planners all carry the previous allocation without any change.

The problem still decomposes per arm (the previous action is each arm's own state), so the planners' per-arm
chains are exact models of every arm and only the budget couples the arms.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.arms import Arms, random_arms
from scenarios.cormab.base_arms_input import arms_from_base, required
from scenarios.cormab.budgeted import BudgetedInstance
from scenarios.switching_arms import base_arms, check_switching, with_switching_cost

#: default costs: comparable to the mean gap between adjacent base-state rewards (0.4-1.2 on seeds 0-4); the
#: policy optimal without them loses 0-11% (mean 5.9%) of the optimum at J = 6, seeds 0-4 (docs/hard_families.md)
ON_COST = 1.0
OFF_COST = 0.5


class SwitchingInstance(BudgetedInstance):
    """Arms under a budget whose state includes the previous action: starting or stopping a pull costs."""

    on_cost: float = Field(ge=0.0, allow_inf_nan=False, description="cost of pulling an arm idle on the last step")
    off_cost: float = Field(ge=0.0, allow_inf_nan=False, description="cost of idling an arm pulled on the last step")

    @model_validator(mode="before")
    @classmethod
    def _from_base(cls, data: Any) -> Any:
        """Accept ``base_arms`` (K = 1 arms without the previous action) in place of ``arms``."""

        def build(base: Arms, fields: dict) -> Arms | None:
            number = "a number >= 0"
            on = required(fields, "on_cost", lambda v: isinstance(v, int | float) and not isinstance(v, bool), number)
            off = required(fields, "off_cost", lambda v: isinstance(v, int | float) and not isinstance(v, bool), number)
            return with_switching_cost(base, float(on), float(off))

        return arms_from_base(data, "switching arms", build)

    @model_validator(mode="after")
    def _switching_arms(self) -> SwitchingInstance:
        check_switching(self.arms, self.on_cost, self.off_cost)
        return self

    @classmethod
    def generate(
        cls,
        n_arms: int = 6,
        budget: float = 2,
        seed: int = 0,
        horizon: int = 20,
        n_states: int = 3,
        on_cost: float = ON_COST,
        off_cost: float = OFF_COST,
    ) -> SwitchingInstance:
        """Random switching arms.

        Parameters:
            n_arms: J, the number of arms (J <= 6 with 3 base states for the exact DP: 6^J joint states).
            budget: B, the most arms pulled per step.
            seed: the arms' random seed (:func:`scenarios.arms.random_arms`: rewards on arrival increasing in
                the state, pulls push the arm up, every arm starts in base state 0, not pulled).
            horizon: steps per episode.
            n_states: base states per arm (each arm then has 2 x n_states states).
            on_cost: paid for each arm pulled that was idle on the previous step (>= 0).
            off_cost: paid for each arm left idle that was pulled on the previous step (>= 0).
        """
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        if n_states < 2:
            raise ValueError("n_states: must be at least 2")
        if budget < 0:
            raise ValueError("budget: must be >= 0")
        arms = with_switching_cost(random_arms(n_arms, n_states, 1, seed, horizon), on_cost, off_cost)
        return cls(arms=arms, budget=budget, on_cost=on_cost, off_cost=off_cost)

    def base_arms(self) -> Arms:
        """The arms without the previous action (step rewards r(x, a), no switching costs)."""
        return base_arms(self.arms)

    def action_model(self) -> ActionModel:
        """The budgeted feasible set, named after this scenario (so checkpoints reload this class)."""
        return dataclasses.replace(super().action_model(), name="switching")
