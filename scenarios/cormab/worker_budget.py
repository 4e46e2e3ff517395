"""Worker budgets over the horizon: a shared resource whose state persists across steps (issue 16, item 3).

J beneficiary arms are called by W workers. Each step a worker makes at most one call; over the episode it
makes at most ``calls_per_worker`` calls ("at most 12 calls per worker per month"). The instance's arms are the
J beneficiaries followed by the W worker arms of :mod:`scenarios.worker_arms` (state: calls made so far; the
call unavailable once the budget is spent), tied by one row

    calls:  sum_{j < J} a_j - sum_{w} a_{J + w} == 0        (every call is made by one worker)

so at most W beneficiaries are called per step, and the engine's state carries every worker's remaining budget.
The myopic policy and the per-arm index planners spend the budget as soon as a call pays; the optimum keeps calls
for the beneficiaries and the steps where they pay most. The occupancy LP (bound, Lagrangian, LP-update) holds
the workers' chains and the row in expectation, so it sees the budget.

The feasible set is not downward closed (dropping a worker's call strands its beneficiary's call), so
:meth:`WorkerBudgetInstance.drop_unavailable` repairs instead: it drops the unavailable calls, then the surplus
on the larger side (the last beneficiaries or workers called).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.arms import Arms, random_arms
from scenarios.constraints.base import RowsOracle
from scenarios.cormab.base_arms_input import arms_from_base, required
from scenarios.cormab.instance import CoRMABInstance
from scenarios.worker_arms import split_workers, with_workers

#: default budget per worker: a third of the steps of the default 20-step episode
CALLS_PER_WORKER = 6


class WorkerBudgetInstance(CoRMABInstance):
    """Beneficiary arms called by workers, each with a budget of calls per episode (worker arms last)."""

    n_workers: int = Field(ge=1, description="W: the workers (each makes at most one call per step)")
    calls_per_worker: int = Field(ge=1, description="the most calls one worker makes per episode")

    #: drop_unavailable repairs feasibility (the calls row is not downward closed)
    repairs_dropped_actions: ClassVar[bool] = True
    #: the learned Q's prior under ``prior="auto"``: the Lagrangian planner's LP sees the budget, the Whittle
    #: indices do not (exact, J = 4, W = 2, seeds 0-4: 98.7-99.9% of the optimum against 93.4-98.8%)
    default_prior: ClassVar[str] = "lagrangian"

    @model_validator(mode="before")
    @classmethod
    def _from_base(cls, data: Any) -> Any:
        """Accept ``base_arms`` (the beneficiaries only) in place of ``arms``."""

        def build(base: Arms, fields: dict) -> Arms | None:
            workers = required(fields, "n_workers", lambda v: type(v) is int, "an integer >= 1")
            calls = required(fields, "calls_per_worker", lambda v: type(v) is int, "an integer >= 1")
            return with_workers(base, workers, calls)  # out of range: with_workers names the field

        return arms_from_base(data, "beneficiaries followed by worker arms", build)

    @model_validator(mode="after")
    def _worker_arms(self) -> WorkerBudgetInstance:
        split_workers(self.arms, self.n_workers, self.calls_per_worker)
        return self

    @classmethod
    def generate(
        cls,
        n_arms: int = 4,
        budget: float = 2,
        seed: int = 0,
        horizon: int = 20,
        n_states: int = 3,
        calls_per_worker: int = CALLS_PER_WORKER,
    ) -> WorkerBudgetInstance:
        """Random beneficiaries and ``budget`` workers.

        Parameters:
            n_arms: J, the beneficiaries (the instance has J + W arms; exact DP: 3^J (calls + 1)^W joint states,
                e.g. 81 x 49 for J = 4, W = 2, 6 calls).
            budget: W, the workers: the most beneficiaries called per step.
            seed: the beneficiaries' random seed (:func:`scenarios.arms.random_arms`: rewards on arrival
                increasing in the state, calls push the arm up, every arm starts in state 0).
            horizon: steps per episode.
            n_states: states per beneficiary.
            calls_per_worker: the most calls one worker makes per episode.
        """
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        if budget != int(budget) or budget < 1:
            raise ValueError(f"budget: the number of workers, an integer >= 1, got {budget!r}")
        base = random_arms(n_arms, n_states, 1, seed, horizon)
        workers = int(budget)
        return cls(
            arms=with_workers(base, workers, calls_per_worker), n_workers=workers, calls_per_worker=calls_per_worker
        )

    @property
    def n_beneficiaries(self) -> int:
        return self.n_arms - self.n_workers

    def base_arms(self) -> Arms:
        """The beneficiary arms alone."""
        return split_workers(self.arms, self.n_workers, self.calls_per_worker)

    def action_model(self) -> ActionModel:
        from scenarios.constraints.linear import LinearBlock, LinearRow

        J = self.n_beneficiaries
        terms = {f"a[{j}]": 1.0 for j in range(J)} | {f"a[{J + w}]": -1.0 for w in range(self.n_workers)}
        block = LinearBlock(rows=[LinearRow(terms=terms, sense="==", rhs=0.0, name="calls")])
        model = self.compose_model("worker_budget", [block])
        if not self.constraints and isinstance(model.oracle, RowsOracle):  # the calls row alone: sample it directly
            model.oracle = MatchedCallsOracle(model.oracle, J, self.n_workers)
        return model

    def drop_unavailable(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """``action`` without its unavailable entries, then without the surplus calls of the larger side (the
        highest-numbered beneficiaries or workers), so that every call still has a worker."""
        a = super().drop_unavailable(states, action)
        J = self.n_beneficiaries
        calls, workers = a[..., :J], a[..., J:]
        surplus = calls.sum(-1, keepdims=True) - workers.sum(-1, keepdims=True)
        for side, extra in ((calls, surplus), (workers, -surplus)):
            rank = np.cumsum(side[..., ::-1], axis=-1)[..., ::-1]  # calls at or after each entry on that side
            side[(side == 1) & (rank <= extra)] = 0
        return a


class MatchedCallsOracle(RowsOracle):
    """The calls row's oracle with a direct sampler: k uniform in 0..min(J, W), then k beneficiaries and k workers
    uniformly (the generic sampler of a set that is not downward closed solves a MILP per sample)."""

    def __init__(self, rows: RowsOracle, n_beneficiaries: int, n_workers: int) -> None:
        super().__init__(rows.A, rows.lower, rows.upper, rows.closed, rows._fallback)
        self.n_beneficiaries, self.n_workers = n_beneficiaries, n_workers

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        J, W = self.n_beneficiaries, self.n_workers
        k = int(rng.integers(0, min(J, W) + 1))
        a = np.zeros(J + W, dtype=np.int64)
        a[rng.choice(J, k, replace=False)] = 1
        a[J + rng.choice(W, k, replace=False)] = 1
        return a
