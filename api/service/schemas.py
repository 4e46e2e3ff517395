"""Request and response bodies. Numbers are strict: no booleans or strings as numbers, no NaN or infinity;
every list has a bounded length."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
)

from api.service.errors import ErrorDetail

MAX_ARMS = 10_000
MAX_STATE = 10_001
BIG = 1e12


# A finite JSON number (integers accepted, booleans and strings refused). Bounds are added as
# ``Annotated[Real, Field(gt=..., le=...)]``: one ``number`` schema, so OpenAPI publishes them as JSON Schema's
# ``exclusiveMinimum`` / ``minimum`` / ``exclusiveMaximum`` / ``maximum``.
Real = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Number = Annotated[Real, Field(ge=-BIG, le=BIG)]
Int = Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]
NonNegInt = Annotated[StrictInt, Field(ge=0, le=2**53)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def iso_utc(value: float | int | str | datetime) -> str:
    """An epoch time (as stored) as ISO 8601 UTC text, e.g. ``2026-12-03T22:20:30.123456Z``."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        value = value.timestamp()
    return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def with_iso_times(out: dict) -> dict:
    """A response dict with its ``created_at`` converted (for routes that serialise without the model)."""
    return out | {"created_at": iso_utc(out["created_at"])} if "created_at" in out else out


Timestamp = Annotated[
    str,
    BeforeValidator(iso_utc),
    Field(
        description="ISO 8601 UTC time",
        json_schema_extra={"format": "date-time"},
        examples=["2026-12-03T22:20:30.123456Z"],
    ),
]

FORBIDDEN_NAME_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def printable_name(name: str) -> str:
    """Refuse control, format (bidirectional overrides, zero-width), surrogate, private-use, unassigned and
    line / paragraph separator characters, and blank names."""
    for i, ch in enumerate(name):
        category = unicodedata.category(ch)
        if category in FORBIDDEN_NAME_CATEGORIES:
            raise ValueError(
                f"character {i} (U+{ord(ch):04X}, category {category}) is not allowed: names are "
                "printable text without control or format characters"
            )
    if not name.strip():
        raise ValueError("the name is blank")
    return name


# ------------------------------------------------------------------------------------------ meta
class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]


class Version(BaseModel):
    version: str
    api: Literal["v1"] = "v1"


class ScenarioInfo(BaseModel):
    name: str
    description: str


class ScenarioList(BaseModel):
    scenarios: list[ScenarioInfo]


class ValidateRequest(Strict):
    instance: dict[str, Any] = Field(description="the scenario instance as plain JSON data")


class ValidateResult(BaseModel):
    scenario: str
    valid: bool
    n_arms: int | None = None
    error: ErrorDetail | None = None


# ------------------------------------------------------------------------------------------ keys
Scope = Literal["read", "decide", "admin"]


class KeyCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "ops-dashboard", "scopes": ["read"]}]})
    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="printable text (no control or format characters)",
            examples=["ops-dashboard"],
        ),
        AfterValidator(printable_name),
    ]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]


class KeyInfo(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: Timestamp
    revoked: bool


class KeyCreated(BaseModel):
    key: str = Field(description="the secret key: shown once, stored only hashed")
    info: KeyInfo


class KeyList(BaseModel):
    keys: list[KeyInfo]


# -------------------------------------------------------------------------------------- policies
class PolicyCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"path": "cap20"}]})
    path: Annotated[
        str,
        Field(
            min_length=1, max_length=1000, description="checkpoint directory, relative to the server's policy directory"
        ),
    ]


MAX_PLANNER_ARMS = 1_000  # a planner's fit (indices, multipliers) stays within seconds up to here


class PlannerCreate(Strict):
    scenario: Annotated[str, Field(min_length=1, max_length=64, description="a scenario name (GET /v1/scenarios)")]
    planner: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="whittle | lagrangian | action_law | lp_update (the library's planner registry)",
        ),
    ]
    instance: dict[str, Any] | None = Field(None, description="the scenario's JSON instance; else generated")
    n_arms: Annotated[StrictInt, Field(ge=1, le=MAX_PLANNER_ARMS)] | None = None
    budget: Annotated[StrictInt, Field(ge=1, le=MAX_PLANNER_ARMS)] | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] | None = None
    horizon: Annotated[StrictInt, Field(ge=1, le=200)] | None = None
    options: dict[str, StrictBool | str | int | float] = Field(
        default_factory=dict,
        description='planner options, e.g. {"rounding": "marginals"} or {"warm_start": false} for lp_update',
    )

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [{"scenario": "capacity", "planner": "whittle", "n_arms": 20, "budget": 5, "seed": 0}]
        },
    )


class NetworkShape(BaseModel):
    n_actions: int
    state_dim: int
    hidden: list[int]
    context_dim: int


class PolicyInfo(BaseModel):
    id: str
    path: str
    scenario: str
    policy_version: str
    kind: str = Field("dqn", description="dqn (a trained Q-network) or planner (no training)")
    network: NetworkShape | None = Field(None, description="the Q-network's shape (trained policies)")
    planner: dict[str, Any] | None = Field(None, description="the planner and its options (planner policies)")
    state_length: int = Field(description="entries of a state: the arm states then the time to go")
    training: dict[str, Any]
    training_summary: dict[str, Any]
    created_at: Timestamp


class PolicyList(BaseModel):
    policies: list[PolicyInfo]


# ------------------------------------------------------------------------------------- decisions
# the selectors a policy offers come from its kind's registry (a trained Q-network: mip, enumerate, greedy,
# sampling, auto and plug-in selectors; a planner: mip, greedy, auto; an actor-critic: neighbourhood, mip, ...):
# the policy refuses one it does not offer with 422, field "selector"
Selector = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="a selector the policy offers (its kind's selector registry); e.g. mip, greedy",
    ),
]


class DecisionRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"state": [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 20], "deadline_seconds": 0.05, "selector": "mip"},
                {"state": [0, 1, 2, 3, 0, 1, 2, 3, 0, 1], "selector": "greedy"},
            ]
        }
    )
    state: Annotated[
        list[Int],
        Field(min_length=1, max_length=MAX_STATE, description="[s_1..s_J, time_to_go] or the arm states alone"),
    ]
    deadline_seconds: Annotated[Real, Field(gt=0, le=600)] | None = None
    selector: Selector | None = Field(None, description="default: the policy's first selector (mip; lookahead)")


class DecisionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0f8e1c3a9b2d4e6f8a1b3c5d7e9f0a2b",
                    "policy_id": "5a1c9e7b3d2f4a6c8e0b1d3f5a7c9e1b",
                    "action": [0, 1, 0, 0, 1, 0, 0, 1, 0, 0],
                    "value": 12.4,
                    "bound": 12.5,
                    "gap": 0.008,
                    "status": "optimal",
                    "deadline_hit": False,
                    "seconds": 0.031,
                    "selector": "mip",
                    "policy_version": "3f2a9c1e7b5d",
                    "assignment": {"workers": {"0": [1, 4], "1": [7]}},
                    "reason": "exact capacity oracle",
                    "created_at": "2026-12-03T22:20:30.123456Z",
                }
            ]
        }
    )
    id: str
    policy_id: str
    action: list[int]
    value: float | None
    bound: float | None
    gap: float | None
    status: str = Field(description="optimal | time_limit | heuristic")
    deadline_hit: bool
    seconds: float
    selector: str
    policy_version: str
    assignment: dict[str, Any] = Field(
        default_factory=dict,
        description="the action's certificate from the feasible set's constraint blocks: workers -> arms served, "
        "slots (worker, slot, arm), route (nodes of the walk), interventions -> arms reached; a user block's part "
        "under its label constraints[k]; empty when the scenario has no blocks",
    )
    reason: str = Field(
        "",
        description="which path answered and why (e.g. the exact oracle, the network MILP, a solver error and the "
        "fallback taken); empty when there is nothing to say",
    )
    created_at: Timestamp
