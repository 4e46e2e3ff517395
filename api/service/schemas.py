"""Request and response bodies. Numbers are strict: no booleans or strings as numbers, no NaN or infinity;
every list has a bounded length."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from api.service.errors import ErrorDetail

MAX_ARMS = 10_000
MAX_STATE = 10_001
BIG = 1e12

Number = Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False, ge=-BIG, le=BIG)]
Int = Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]
NonNegInt = Annotated[StrictInt, Field(ge=0, le=2**53)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    name: Annotated[str, Field(min_length=1, max_length=200)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]


class KeyInfo(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: float
    revoked: bool


class KeyCreated(BaseModel):
    key: str = Field(description="the secret key: shown once, stored only hashed")
    info: KeyInfo


class KeyList(BaseModel):
    keys: list[KeyInfo]


# -------------------------------------------------------------------------------------- policies
class PolicyCreate(Strict):
    path: Annotated[str, Field(min_length=1, max_length=1000,
                               description="checkpoint directory, relative to the server's policy directory")]


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
    network: NetworkShape
    state_length: int = Field(description="entries of a state: the arm states then the time to go")
    training: dict[str, Any]
    training_summary: dict[str, Any]
    created_at: float


class PolicyList(BaseModel):
    policies: list[PolicyInfo]


# ------------------------------------------------------------------------------------- decisions
Selector = Literal["mip", "enumerate", "auto", "greedy", "sampling"]


class DecisionRequest(Strict):
    state: Annotated[list[Int], Field(min_length=1, max_length=MAX_STATE,
                                      description="[s_1..s_J, time_to_go] or the arm states alone")]
    deadline_seconds: Annotated[StrictFloat | StrictInt, Field(gt=0, le=600, allow_inf_nan=False)] | None = None
    selector: Selector = "mip"


class DecisionOut(BaseModel):
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
    created_at: float


# -------------------------------------------------------------------------------------- sessions
class RestlessArmsIn(Strict):
    transitions: Annotated[list[Annotated[list[Annotated[list[Annotated[list[Number], Field(max_length=64)]],
                                                         Field(max_length=64)]], Field(max_length=8)]],
                           Field(min_length=1, max_length=MAX_ARMS)]
    rewards: Annotated[list[Annotated[list[Annotated[list[Number], Field(max_length=8)]], Field(max_length=64)]],
                       Field(min_length=1, max_length=MAX_ARMS)]
    costs: Annotated[list[Annotated[list[Number], Field(max_length=8)]], Field(min_length=1, max_length=MAX_ARMS)]
    initial: Annotated[list[Annotated[list[Number], Field(max_length=64)]], Field(min_length=1, max_length=MAX_ARMS)]


class WhittleSessionCreate(Strict):
    kind: Literal["whittle"]
    arms: RestlessArmsIn
    budget: Annotated[StrictFloat | StrictInt, Field(ge=0, le=BIG, allow_inf_nan=False)]
    discount: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1, allow_inf_nan=False)] = 0.95
    horizon: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    fill_budget: StrictBool = False
    allow_non_indexable: StrictBool = False


class TopK(Strict):
    type: Literal["top_k"]
    k: Annotated[StrictInt, Field(ge=1, le=MAX_ARMS)]
    allow_fewer: StrictBool = False


class Knapsack(Strict):
    type: Literal["knapsack"]
    sizes: Annotated[list[Annotated[StrictFloat | StrictInt, Field(ge=0, le=1e6, allow_inf_nan=False)]],
                     Field(min_length=1, max_length=MAX_ARMS)]
    capacity: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1e6, allow_inf_nan=False)]


Constraint = Annotated[TopK | Knapsack, Field(discriminator="type")]


class ScalarFeedbackConfig(Strict):
    learning_rate: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1, allow_inf_nan=False)] = 0.5


class _SemiBanditCreate(Strict):
    n_arms: Annotated[StrictInt, Field(ge=1, le=MAX_ARMS)]
    constraint: Constraint
    reward_range: Annotated[list[Number], Field(min_length=2, max_length=2)] = [0.0, 1.0]
    seed: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] = 0
    epsilon: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    scalar_feedback: ScalarFeedbackConfig = ScalarFeedbackConfig()


class CUCBSessionCreate(_SemiBanditCreate):
    kind: Literal["cucb"]
    alpha: Annotated[StrictFloat | StrictInt, Field(ge=0, le=100, allow_inf_nan=False)] = 1.5


class ThompsonSessionCreate(_SemiBanditCreate):
    kind: Literal["thompson"]
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    prior: Annotated[list[Annotated[StrictFloat | StrictInt, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]],
                     Field(min_length=2, max_length=2)] = [1.0, 1.0]
    sigma: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1e6, allow_inf_nan=False)] = 1.0


SessionCreate = Annotated[WhittleSessionCreate | CUCBSessionCreate | ThompsonSessionCreate,
                          Field(discriminator="kind")]


class SessionInfo(BaseModel):
    id: str
    kind: str
    n_arms: int
    created_at: float
    selections: int
    feedback: int
    config: dict[str, Any]
    state: dict[str, Any] = Field(description="learnt statistics (counts, means, ...) or the Whittle setting")


class SelectRequest(Strict):
    states: Annotated[list[Annotated[StrictInt, Field(ge=0, le=1000)]], Field(min_length=1, max_length=MAX_ARMS)] \
        | None = Field(None, description="arm states (restless sessions only)")
    time_to_go: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None


class SelectionOut(BaseModel):
    id: str = Field(description="decision id, to send feedback for")
    session_id: str
    action: list[int]
    round: int
    propensity: float | None
    exact: bool
    created_at: float


class FeedbackRequest(Strict):
    reward: Number | None = Field(None, description="scalar (full-bandit) reward of the whole action")
    rewards: Annotated[list[Number | None], Field(min_length=1, max_length=MAX_ARMS)] | None = Field(
        None, description="per-arm rewards (semi-bandit); entries of arms not chosen may be null")
    next_states: Annotated[list[Annotated[StrictInt, Field(ge=0, le=1000)]], Field(max_length=MAX_ARMS)] | None = \
        Field(None, description="restless sessions: the arm states observed after the action (logged)")


class FeedbackOut(BaseModel):
    selection_id: str
    session_id: str
    rewards_applied: list[float | None]
    rounds: int
    replayed: bool = Field(description="true when this exact feedback had already been recorded")
    created_at: float
