"""Bandit session bodies (``/v1/sessions``): restless sessions (Whittle, learning Whittle) and combinatorial
semi-bandit sessions (CUCB, Thompson), selections and feedback. Shared number types live in
:mod:`api.service.schemas`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from api.service.schemas import BIG, MAX_ARMS, Number, Real, Strict, Timestamp

# -------------------------------------------------------------------------------------- sessions

#: per-arm tables shared by the restless session bodies
StateActionRewards = Annotated[
    list[Annotated[list[Annotated[list[Number], Field(max_length=8)]], Field(max_length=64)]],
    Field(min_length=1, max_length=MAX_ARMS, description="r[arm][state][action]; or arrival_rewards"),
]
ArrivalRewards = Annotated[
    list[Annotated[list[Number], Field(max_length=64)]],
    Field(min_length=1, max_length=MAX_ARMS, description="r[arm][next state], paid on arrival; or rewards"),
]
ActionCosts = Annotated[list[Annotated[list[Number], Field(max_length=8)]], Field(min_length=1, max_length=MAX_ARMS)]


class RestlessArmsIn(Strict):
    transitions: Annotated[
        list[
            Annotated[
                list[Annotated[list[Annotated[list[Number], Field(max_length=64)]], Field(max_length=64)]],
                Field(max_length=8),
            ]
        ],
        Field(min_length=1, max_length=MAX_ARMS),
    ]
    rewards: StateActionRewards | None = None
    arrival_rewards: ArrivalRewards | None = None
    costs: ActionCosts | None = None
    initial: (
        Annotated[list[Annotated[list[Number], Field(max_length=64)]], Field(min_length=1, max_length=MAX_ARMS)] | None
    ) = None


class WhittleSessionCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "whittle",
                    "budget": 1,
                    "discount": 0.95,
                    "arms": {
                        "transitions": [[[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.1, 0.9]]]] * 2,
                        "rewards": [[[0.0, 0.0], [1.0, 1.0]]] * 2,
                        "costs": [[0, 1]] * 2,
                        "initial": [[1.0, 0.0]] * 2,
                    },
                }
            ]
        }
    )
    kind: Literal["whittle"]

    @model_validator(mode="before")
    @classmethod
    def _bounded_work(cls, data: Any) -> Any:
        """Refuse (422 ``too_expensive``) a session too costly for the request's budget before validating its
        numbers one by one (see :mod:`api.service.limits`)."""
        from api.service.limits import check_raw_whittle

        check_raw_whittle(data)
        return data

    arms: RestlessArmsIn
    budget: Annotated[Real, Field(ge=0, le=BIG)]
    discount: Annotated[Real, Field(gt=0, le=1)] = 0.95
    horizon: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    fill_budget: StrictBool = False
    allow_non_indexable: StrictBool = False


Counts4 = Annotated[
    list[
        Annotated[
            list[
                Annotated[
                    list[Annotated[list[Annotated[Real, Field(ge=0, le=BIG)]], Field(max_length=64)]],
                    Field(max_length=64),
                ]
            ],
            Field(max_length=8),
        ]
    ],
    Field(min_length=1, max_length=MAX_ARMS),
]
MAX_POSTERIOR_CELLS = 2_000_000  # arms x actions x states x states of a learning session's counts


class PoolingIn(Strict):
    clusters: Annotated[list[Annotated[StrictInt, Field(ge=0, le=MAX_ARMS)]], Field(min_length=1, max_length=MAX_ARMS)]
    pool_strength: Annotated[Real, Field(ge=0, le=BIG)] | None = Field(None, description="tau; None: estimated")
    max_pool_strength: Annotated[Real, Field(gt=0, le=BIG)] = 1000.0
    centre: Literal["inverse_variance", "counts"] = Field(
        "inverse_variance", description="cluster centre of each arm's prior (scenarios.estimation.pooling)"
    )


class DynamicsPosteriorIn(Strict):
    """The counts of a log (``DynamicsPosterior.to_dict()``'s counts, prior_strength and pooling); the session's
    posterior is ``estimate_dynamics(counts + the feedback's transitions, prior_strength, pooling)``."""

    counts: Counts4 = Field(description="counts[arm][action][state][next state] of the logged transitions")
    prior_strength: Annotated[Real, Field(gt=0, le=BIG)] = 1.0
    pooling: PoolingIn | None = Field(None, description="pool arms' counts within clusters (empirical Bayes)")


class LearningWhittleSessionCreate(Strict):
    """Whittle allocation on dynamics learnt from a log and from every feedback (arm states before and after)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "learning_whittle",
                    "budget": 1,
                    "posterior": {
                        "counts": [[[[5, 1], [2, 3]], [[1, 4], [0, 6]]]] * 2,
                        "pooling": {"clusters": [0, 0]},
                    },
                    "arrival_rewards": [[0.0, 1.0]] * 2,
                    "horizon": 10,
                }
            ]
        }
    )
    kind: Literal["learning_whittle"]
    posterior: DynamicsPosteriorIn
    rewards: StateActionRewards | None = None
    arrival_rewards: ArrivalRewards | None = None
    costs: ActionCosts | None = Field(None, description="cost[arm][action], strictly increasing (default 0, 1, ...)")
    budget: Annotated[Real, Field(ge=0, le=BIG)]
    discount: Annotated[Real, Field(gt=0, le=1)] = 0.95
    horizon: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    method: Literal["thompson", "ucb"] = Field("thompson", description="posterior sampling, or mean + bonus")
    bonus: Annotated[Real, Field(ge=0, le=BIG)] = Field(1.0, description="ucb's optimism (0: the posterior mean)")
    fill_budget: StrictBool = False
    seed: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] = 0

    @model_validator(mode="after")
    def _shapes(self) -> LearningWhittleSessionCreate:
        """Rectangular arrays of matching shapes: counts (N, A, S, S) with A, S >= 2; rewards (N, S, A) or
        arrival_rewards (N, S); costs (N, A); one cluster per arm."""
        counts = _rectangular(self.posterior.counts, "posterior.counts", 4)
        N, A, S, S2 = counts.shape
        if S != S2 or A < 2 or S < 2:
            raise ValueError(
                f"posterior.counts: expected (arms, actions >= 2, states >= 2, states), got {counts.shape}"
            )
        if counts.size > MAX_POSTERIOR_CELLS:
            raise ValueError(f"posterior.counts: {counts.size} cells, more than {MAX_POSTERIOR_CELLS}")
        if (self.rewards is None) == (self.arrival_rewards is None):
            raise ValueError("rewards: give exactly one of rewards (r(s, a)) and arrival_rewards (r(s'))")
        if self.rewards is not None and _rectangular(self.rewards, "rewards", 3).shape != (N, S, A):
            raise ValueError(f"rewards: expected shape {(N, S, A)} (arms, states, actions)")
        if self.arrival_rewards is not None and _rectangular(self.arrival_rewards, "arrival_rewards", 2).shape != (
            N,
            S,
        ):
            raise ValueError(f"arrival_rewards: expected shape {(N, S)} (arms, states)")
        if self.costs is not None and _rectangular(self.costs, "costs", 2).shape != (N, A):
            raise ValueError(f"costs: expected shape {(N, A)} (arms, actions)")
        if self.posterior.pooling is not None and len(self.posterior.pooling.clusters) != N:
            raise ValueError(f"posterior.pooling.clusters: expected {N} cluster ids (one per arm)")
        return self


def _rectangular(rows: list, name: str, ndim: int) -> np.ndarray:
    try:
        out = np.asarray(rows, dtype=float)
    except ValueError:
        out = np.zeros(0)
    if out.ndim != ndim:
        raise ValueError(f"{name}: expected a rectangular {ndim}-D array")
    return out


class TopK(Strict):
    type: Literal["top_k"]
    k: Annotated[StrictInt, Field(ge=1, le=MAX_ARMS)]
    allow_fewer: StrictBool = False


class Knapsack(Strict):
    type: Literal["knapsack"]
    sizes: Annotated[list[Annotated[Real, Field(ge=0, le=1e6)]], Field(min_length=1, max_length=MAX_ARMS)]
    capacity: Annotated[Real, Field(ge=0, le=1e6)]


Constraint = Annotated[TopK | Knapsack, Field(discriminator="type")]


class ScalarFeedbackConfig(Strict):
    learning_rate: Annotated[Real, Field(gt=0, le=1)] = 0.5


class _SemiBanditCreate(Strict):
    n_arms: Annotated[StrictInt, Field(ge=1, le=MAX_ARMS)]
    constraint: Constraint
    reward_range: Annotated[list[Number], Field(min_length=2, max_length=2)] = [0.0, 1.0]  # noqa: RUF012 (a pydantic field: the default is copied)
    seed: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] = 0
    epsilon: Annotated[Real, Field(ge=0, le=1)] = 0.0
    scalar_feedback: ScalarFeedbackConfig = ScalarFeedbackConfig()


class CUCBSessionCreate(_SemiBanditCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"kind": "cucb", "n_arms": 20, "constraint": {"type": "top_k", "k": 4}, "alpha": 1.5, "seed": 7}
            ]
        }
    )
    kind: Literal["cucb"]
    alpha: Annotated[Real, Field(ge=0, le=100)] = 1.5


class ThompsonSessionCreate(_SemiBanditCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "thompson",
                    "n_arms": 3,
                    "constraint": {"type": "knapsack", "sizes": [1, 2, 3], "capacity": 3},
                    "likelihood": "bernoulli",
                    "prior": [1, 1],
                }
            ]
        }
    )
    kind: Literal["thompson"]
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    prior: Annotated[list[Annotated[Real, Field(ge=-1e6, le=1e6)]], Field(min_length=2, max_length=2)] = [1.0, 1.0]  # noqa: RUF012 (a pydantic field: the default is copied)
    sigma: Annotated[Real, Field(gt=0, le=1e6)] = 1.0


SessionCreate = Annotated[
    WhittleSessionCreate | LearningWhittleSessionCreate | CUCBSessionCreate | ThompsonSessionCreate,
    Field(discriminator="kind"),
]


class SessionInfo(BaseModel):
    id: str
    kind: str
    n_arms: int
    created_at: Timestamp
    selections: int
    feedback: int
    config: dict[str, Any]
    state: dict[str, Any] = Field(description="learnt statistics (counts, means, ...) or the Whittle setting")


class SelectRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{}, {"states": [0, 1, 1, 0], "time_to_go": 5}]})
    states: (
        Annotated[list[Annotated[StrictInt, Field(ge=0, le=1000)]], Field(min_length=1, max_length=MAX_ARMS)] | None
    ) = Field(None, description="arm states (restless sessions only)")
    time_to_go: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None


class SelectionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9b2d4e6f8a1b3c5d7e9f0a2b0f8e1c3a",
                    "session_id": "e7b3d2f4a6c8e0b1d3f5a7c9e1b5a1c9",
                    "action": [1, 0, 0, 1],
                    "round": 1,
                    "propensity": 0.25,
                    "exact": True,
                    "created_at": "2026-12-03T22:20:30.123456Z",
                }
            ]
        }
    )
    id: str = Field(description="decision id, to send feedback for")
    session_id: str
    action: list[int]
    round: int
    propensity: float | None
    exact: bool
    created_at: Timestamp


class FeedbackRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reward": 1.0}, {"rewards": [1.0, None, None, 0.0]}]})
    reward: Number | None = Field(None, description="scalar (full-bandit) reward of the whole action")
    rewards: Annotated[list[Number | None], Field(min_length=1, max_length=MAX_ARMS)] | None = Field(
        None, description="per-arm rewards (semi-bandit); entries of arms not chosen may be null"
    )
    next_states: Annotated[list[Annotated[StrictInt, Field(ge=0, le=1000)]], Field(max_length=MAX_ARMS)] | None = Field(
        None, description="restless sessions: the arm states observed after the action (logged)"
    )


class FeedbackOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "selection_id": "9b2d4e6f8a1b3c5d7e9f0a2b0f8e1c3a",
                    "session_id": "e7b3d2f4a6c8e0b1d3f5a7c9e1b5a1c9",
                    "rewards_applied": [1.0, None, None, 0.0],
                    "rounds": 1,
                    "replayed": False,
                    "created_at": "2026-12-03T22:20:30.123456Z",
                }
            ]
        }
    )
    selection_id: str
    session_id: str
    rewards_applied: list[float | None]
    rounds: int
    replayed: bool = Field(description="true when this exact feedback had already been recorded")
    created_at: Timestamp
