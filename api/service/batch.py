"""Batch decisions: many states for one policy in one request, one Decision each, idempotent as a whole.

Each state is decided exactly as ``POST /v1/policies/{id}/decisions`` would (and logged as its own decision,
readable at ``GET /v1/decisions/{id}``). ``deadline_seconds`` bounds the whole batch, counted from the
request's arrival: states reached after it has passed get the greedy answer, flagged ``deadline_hit``.
Without it the batch as a whole gets ``max_decision_seconds`` (what one decision may take), the same way.
Every state is validated before any is decided, so a malformed state fails the batch with nothing logged.
With ``Idempotency-Key`` the batch's answer is stored (table ``decision_batches``, unique per policy and key)
and replayed for the same key and body; the same key with another body is 422 ``idempotency_key_reused``.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, Field, StrictFloat, StrictInt
from sqlalchemy.exc import IntegrityError

from api.service.db import Database, decision_batches
from api.service.decisions import DecisionService
from api.service.errors import ApiError
from api.service.hashing import request_hash
from api.service.schemas import MAX_STATE, DecisionOut, Int, Selector, Strict, Timestamp, with_iso_times
from scenarios.errors import InvalidInputError

MAX_BATCH = 10_000  # schema bound; the server's own limit is Settings.max_batch_states (default 100)


class BatchDecisionRequest(Strict):
    states: Annotated[
        list[Annotated[list[Int], Field(min_length=1, max_length=MAX_STATE)]],
        Field(
            min_length=1,
            max_length=MAX_BATCH,
            description="states, each [s_1..s_J, time_to_go] or the arm states alone; at most "
            "the server's max_batch_states (default 100)",
        ),
    ]
    deadline_seconds: Annotated[StrictFloat | StrictInt, Field(gt=0, le=600, allow_inf_nan=False)] | None = Field(
        None, description="for the whole batch, from the request's arrival"
    )
    selector: Selector | None = Field(None, description="default: the policy's first selector (mip; lookahead)")


class BatchDecisionOut(BaseModel):
    id: str = Field(description="batch id")
    policy_id: str
    decisions: list[DecisionOut] = Field(description="one Decision per state, in the order of the states")
    created_at: Timestamp


def public(out: dict) -> dict:
    """The stored batch answer as sent: times as ISO text, like the single decision route."""
    return with_iso_times(out | {"decisions": [with_iso_times(d) for d in out["decisions"]]})


class BatchDecisionService:
    def __init__(self, db: Database, decisions: DecisionService, max_states: int = 100) -> None:
        self.db, self.decisions, self.max_states = db, decisions, max_states

    def _stored(self, policy_id: str, key: str) -> tuple[str, dict] | None:
        with self.db.read.connect() as conn:
            row = conn.execute(
                sa.select(decision_batches.c.request_hash, decision_batches.c.response).where(
                    decision_batches.c.policy_id == policy_id, decision_batches.c.idempotency_key == key
                )
            ).first()
        return None if row is None else (row[0], row[1])

    def _validate(self, policy_id: str, states: list[list[int]]) -> None:
        """Every state checked by one of the policy's engines before any is decided (``states.<i>`` named)."""
        with self.decisions.registry.pool(policy_id).acquire() as engine:
            split = getattr(getattr(engine, "_env", None), "split_observation", None)
            if split is None:  # an engine kind without the check: each decision still validates its state
                return
            for i, state in enumerate(states):
                try:
                    split(state)
                except InvalidInputError as exc:
                    raise ApiError(422, "invalid_input", f"states[{i}]: {exc.reason}", f"states.{i}") from exc
                except (ValueError, TypeError) as exc:
                    raise ApiError(422, "invalid_input", f"states[{i}]: {exc}"[:500], f"states.{i}") from exc

    def decide(
        self,
        policy_id: str,
        request: dict,
        key: str | None,
        received: float | None = None,
        max_seconds: float | None = None,
    ) -> tuple[dict, bool]:
        """(response, replayed) for ``request`` = {states, deadline_seconds, selector}. ``max_seconds`` (the key's
        work budget, counted from arrival like the deadline) caps each decision's solver limit as on the single
        route: once the batch has spent it, the remaining states get the shortest solves."""
        received = time.perf_counter() if received is None else received
        states = request["states"]
        if len(states) > self.max_states:
            raise ApiError(
                422,
                "too_many_states",
                f"{len(states)} states in one request; this server accepts at "
                f"most {self.max_states} (max_batch_states)",
                "states",
            )
        digest = request_hash(request)
        if key is not None:
            stored = self._stored(policy_id, key)
            if stored is not None:
                return self._replay(stored, digest), True
        self._validate(policy_id, states)
        # the whole batch gets at most the time one decision may take (max_decision_seconds) unless the request
        # names its own deadline: 100 states must not mean 100 x 30 s of solving
        deadline = request.get("deadline_seconds")
        budget = deadline if deadline is not None else self.decisions.max_seconds
        # at once when the policy vectorises this selector's batches, else state by state (later states get
        # less of the budget, greedy once it has passed)
        out = self.decisions.decide_vectorised(policy_id, states, request["selector"], budget, received, max_seconds)
        if out is None:
            extra = {} if max_seconds is None else {"max_seconds": max_seconds}
            out = [
                self.decisions.decide(
                    policy_id,
                    {"state": state, "deadline_seconds": budget, "selector": request["selector"]},
                    None,
                    received,
                    **extra,
                )[0]
                for state in states
            ]
        response = {"id": uuid.uuid4().hex, "policy_id": policy_id, "decisions": out, "created_at": time.time()}
        if key is None:
            return response, False
        try:
            with self.db.log.begin() as conn:
                conn.execute(
                    decision_batches.insert(),
                    {
                        "id": response["id"],
                        "policy_id": policy_id,
                        "idempotency_key": key,
                        "request_hash": digest,
                        "response": response,
                        "created_at": response["created_at"],
                    },
                )
        except IntegrityError:  # the same key committed concurrently: its answer wins (ours stays in the log)
            stored = self._stored(policy_id, key)
            if stored is None:
                raise
            return self._replay(stored, digest), True
        return response, False

    @staticmethod
    def _replay(stored: tuple[str, dict], digest: str) -> dict:
        if stored[0] != digest:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
                "Idempotency-Key",
            )
        return stored[1]
