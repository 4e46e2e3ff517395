"""Hard per-arm limits: arms pulled under a budget, each at most ``max_pulls`` times per episode and not again
within ``cooldown`` steps of its last pull (issue 16, item 3: "at most 3 calls per beneficiary per month").

The limits are state: each arm's state is (x, pulls so far, steps of cooldown left) (see
:func:`scenarios.pull_limits.with_pull_limits`), and the pull is unavailable in the states where a limit binds
(``arms.available``). The environment refuses such a pull; the planners, the baselines, the lookahead, the exact
DP and the occupancy bound never take it. The problem still decomposes per arm (each arm's counters are its own),
so the planners' per-arm chains model every arm exactly; the myopic policy, which spends an arm's pulls as soon
as they pay, does not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.arms import Arms, random_arms
from scenarios.cormab.base_arms_input import arms_from_base, required
from scenarios.cormab.budgeted import BudgetedInstance
from scenarios.pull_limits import base_arms, check_pull_limits, with_pull_limits

#: defaults: 3 pulls per arm over a 20-step episode, no cooldown (12 states per arm with 3 base states)
MAX_PULLS = 3
COOLDOWN = 0


class PullLimitsInstance(BudgetedInstance):
    """Arms under a per-step budget, each with a cap on its pulls per episode and a cooldown after a pull."""

    max_pulls: int | None = Field(ge=0, description="the most pulls of one arm per episode (None: no cap)")
    cooldown: int = Field(COOLDOWN, ge=0, description="steps after a pull during which the arm cannot be pulled")

    @model_validator(mode="before")
    @classmethod
    def _from_base(cls, data: Any) -> Any:
        """Accept ``base_arms`` (K = 1 arms without the counters) in place of ``arms``."""

        def build(base: Arms, fields: dict) -> Arms | None:
            cap = fields.get("max_pulls")
            if cap is not None and type(cap) is not int:
                raise ValueError(f"max_pulls: expected an integer >= 1 or null, got {cap!r}")
            cooldown = required(fields, "cooldown", lambda v: type(v) is int, "an integer >= 0", COOLDOWN)
            return with_pull_limits(base, cap, cooldown)

        return arms_from_base(data, "limited arms", build)

    @model_validator(mode="after")
    def _limited_arms(self) -> PullLimitsInstance:
        check_pull_limits(self.arms, self.max_pulls, self.cooldown)
        return self

    @classmethod
    def generate(
        cls,
        n_arms: int = 4,
        budget: float = 2,
        seed: int = 0,
        horizon: int = 20,
        n_states: int = 3,
        max_pulls: int | None = MAX_PULLS,
        cooldown: int = COOLDOWN,
    ) -> PullLimitsInstance:
        """Random limited arms.

        Parameters:
            n_arms: J, the number of arms (exact DP: at most 4^8 joint states, e.g. J = 4 with the defaults'
                12 states per arm).
            budget: B, the most arms pulled per step.
            seed: the base arms' random seed (:func:`scenarios.arms.random_arms`: rewards on arrival increasing
                in the state, pulls push the arm up, every arm starts in base state 0).
            horizon: steps per episode.
            n_states: base states per arm (each arm has n_states x (max_pulls + 1) x (cooldown + 1) states).
            max_pulls: the most pulls of one arm per episode (None: no cap).
            cooldown: steps without a pull after each pull of an arm.
        """
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        if n_states < 2:
            raise ValueError("n_states: must be at least 2")
        if budget < 0:
            raise ValueError("budget: must be >= 0")
        arms = with_pull_limits(random_arms(n_arms, n_states, 1, seed, horizon), max_pulls, cooldown)
        return cls(arms=arms, budget=budget, max_pulls=max_pulls, cooldown=cooldown)

    def base_arms(self) -> Arms:
        """The arms without the counters."""
        return base_arms(self.arms, self.max_pulls, self.cooldown)

    def action_model(self) -> ActionModel:
        """The budgeted feasible set, named after this scenario (so checkpoints reload this class)."""
        return dataclasses.replace(super().action_model(), name="pull_limits")
