"""Decisions on registered policies: decide under the engine pool, log every decision, honour Idempotency-Key."""

from __future__ import annotations

import time
import uuid

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.service.db import Database, decisions
from api.service.errors import ApiError
from api.service.hashing import request_hash
from api.service.metrics import observe_decision
from api.service.policies import PolicyRegistry
from engine.decision import Decision
from engine.protocols import VectorisedBatches

MIN_SOLVE_SECONDS = 0.005  # less time than this left before the deadline: answer greedily instead of solving


class DecisionService:
    def __init__(self, db: Database, registry: PolicyRegistry, max_seconds: float = 30.0) -> None:
        self.db, self.registry, self.max_seconds = db, registry, max_seconds

    def _stored(self, policy_id: str, key: str) -> tuple[str, dict] | None:
        with self.db.read.connect() as conn:
            row = conn.execute(
                sa.select(decisions.c.request_hash, decisions.c.response).where(
                    decisions.c.policy_id == policy_id, decisions.c.idempotency_key == key
                )
            ).first()
        return None if row is None else (row[0], row[1])

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

    def decide(
        self,
        policy_id: str,
        request: dict,
        key: str | None,
        received: float | None = None,
        max_seconds: float | None = None,
    ) -> tuple[dict, bool]:
        """(response, replayed) for ``request`` = {state, deadline_seconds, selector}. ``deadline_seconds`` counts
        from ``received`` (``time.perf_counter()`` when the request arrived): time spent queueing for an engine is
        deducted from the solver's limit, and a request whose deadline has passed by then gets the greedy
        answer (``selector: greedy``, flagged) instead of a solve that would overrun it. ``max_seconds`` (the key's
        work budget) caps the solver's time limit below ``max_decision_seconds``."""
        received = time.perf_counter() if received is None else received
        pool = self.registry.pool(policy_id)
        digest = request_hash(request)
        if key is not None:
            stored = self._stored(policy_id, key)
            if stored is not None:
                return self._replay(stored, digest), True
        deadline = request.get("deadline_seconds")
        with pool.acquire() as engine:
            limit, late = self._limit(deadline, received, max_seconds)
            selector = chosen_selector(engine, request["selector"], late)
            limit = self._own_limit(engine, limit, late)
            decision = engine.decide(request["state"], selector=selector, time_limit=limit)
        response = self._response(policy_id, decision, late, deadline, received)
        try:
            with self.db.log.begin() as conn:
                conn.execute(decisions.insert(), _log_row(policy_id, key, digest, request, response))
        except IntegrityError:
            stored = self._stored(policy_id, key) if key is not None else None
            if stored is None:
                raise
            return self._replay(stored, digest), True
        observe_decision(response)
        return response, False

    def _limit(self, deadline: float | None, received: float, max_seconds: float | None) -> tuple[float, bool]:
        """(solver time limit, late): the time left before the deadline and the key's work budget, both counted
        from the arrival, capped at ``max_decision_seconds``; late when less than ``MIN_SOLVE_SECONDS`` is left
        (the answer is then greedy, flagged)."""
        cap = self.max_seconds
        if max_seconds is not None:
            cap = max(min(cap, max_seconds - (time.perf_counter() - received)), MIN_SOLVE_SECONDS)
        if deadline is None:
            return cap, False
        limit = min(float(deadline) - (time.perf_counter() - received), cap)
        return (cap, True) if limit < MIN_SOLVE_SECONDS else (limit, False)

    @staticmethod
    def _own_limit(policy, limit: float, late: bool) -> float:
        """``limit`` lowered to the policy's own ``time_limit`` where it was created with one (a planner's option);
        a late answer keeps the greedy path's limit."""
        for holder in (policy, getattr(policy, "planner", None)):  # a planner policy, or an engine deciding by one
            own = getattr(holder, "time_limit", None)
            if isinstance(own, int | float) and not isinstance(own, bool) and not late:
                return min(limit, float(own))
        return limit

    @staticmethod
    def _response(policy_id: str, decision: Decision, late: bool, deadline: float | None, received: float) -> dict:
        d = decision.to_dict()
        hit = (
            late
            or d["status"] == "time_limit"
            or (deadline is not None and time.perf_counter() - received >= float(deadline))
        )
        return {
            "id": uuid.uuid4().hex,
            "policy_id": policy_id,
            "action": d["action"],
            "value": d["value"],
            "bound": d["bound"],
            "gap": d["gap"],
            "status": d["status"],
            "deadline_hit": bool(hit),
            "seconds": float(d["seconds"]) if np.isfinite(d["seconds"]) else 0.0,
            "selector": d["selector"],
            "policy_version": d["policy_version"],
            "assignment": d.get("assignment", {}),
            "reason": d.get("reason", ""),
            "created_at": time.time(),
        }

    def decide_vectorised(
        self,
        policy_id: str,
        states: list,
        selector: str | None,
        deadline: float | None,
        received: float,
        max_seconds: float | None = None,
    ) -> list[dict] | None:
        """Every state decided in one call of the policy's ``decide_batch`` and logged in one transaction, each
        as its own decision; None (nothing decided) when the policy does not decide this selector's batches at
        once (``vectorises``), so the caller goes state by state."""
        pool = self.registry.pool(policy_id)
        with pool.acquire() as engine:
            selector = chosen_selector(engine, selector, False)
            if len(states) < 2 or not isinstance(engine, VectorisedBatches) or not engine.vectorises(selector):
                return None
            limit, late = self._limit(deadline, received, max_seconds)
            if late:  # nothing left to solve with: the caller's per-state path answers greedily, flagged
                return None
            decided = engine.decide_batch(states, selector=selector, time_limit=self._own_limit(engine, limit, late))
        responses = [self._response(policy_id, d, False, deadline, received) for d in decided]
        with self.db.log.begin() as conn:
            conn.execute(
                decisions.insert(),
                [
                    _log_row(policy_id, None, request_hash(request), request, response)
                    for response, request in zip(
                        responses,
                        ({"state": s, "deadline_seconds": deadline, "selector": selector} for s in states),
                        strict=True,
                    )
                ],
            )
        for r in responses:
            observe_decision(r)
        return responses

    def get(self, decision_id: str) -> dict:
        with self.db.read.connect() as conn:
            row = conn.execute(sa.select(decisions.c.response).where(decisions.c.id == decision_id)).first()
        if row is None:
            raise ApiError(404, "not_found", f"no decision {decision_id!r}", "decision_id")
        return row[0]


def _log_row(policy_id: str, key: str | None, digest: str, request: dict, response: dict) -> dict:
    """One row of the decision log: the request as received, its hash and key, the response as sent."""
    return {
        "id": response["id"],
        "policy_id": policy_id,
        "idempotency_key": key,
        "request_hash": digest,
        "request": request,
        "response": response,
        "created_at": response["created_at"],
    }


def chosen_selector(policy, requested: str | None, late: bool) -> str:
    """The selector a request runs: the requested one (else the policy's default, its first); once the deadline
    has passed, ``greedy`` where the policy offers it, else its default."""
    offered = tuple(policy.selectors)
    if requested is not None and requested not in offered:  # refused whatever the time left (not only when solving)
        raise ApiError(422, "invalid_input", f"expected one of {', '.join(offered)}, got {requested!r}", "selector")
    if late:
        return "greedy" if "greedy" in offered else offered[0]
    return requested or offered[0]
