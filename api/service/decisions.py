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
        selector, late = request["selector"], False
        with pool.acquire() as engine:
            cap = self.max_seconds
            if max_seconds is not None:  # the budget counts from the arrival, like the deadline
                cap = max(min(cap, max_seconds - (time.perf_counter() - received)), MIN_SOLVE_SECONDS)
            if deadline is None:
                limit = cap
            else:
                limit = min(float(deadline) - (time.perf_counter() - received), cap)
                if limit < MIN_SOLVE_SECONDS:
                    selector, late, limit = "greedy", True, cap
            decision = engine.decide(request["state"], selector=selector, time_limit=limit)
        d = decision.to_dict()
        hit = (
            late
            or d["status"] == "time_limit"
            or (deadline is not None and time.perf_counter() - received >= float(deadline))
        )
        response = {
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
        row = {
            "id": response["id"],
            "policy_id": policy_id,
            "idempotency_key": key,
            "request_hash": digest,
            "request": request,
            "response": response,
            "created_at": response["created_at"],
        }
        try:
            with self.db.log.begin() as conn:
                conn.execute(decisions.insert(), row)
        except IntegrityError:
            stored = self._stored(policy_id, key) if key is not None else None
            if stored is None:
                raise
            return self._replay(stored, digest), True
        observe_decision(response)
        return response, False

    def get(self, decision_id: str) -> dict:
        with self.db.read.connect() as conn:
            row = conn.execute(sa.select(decisions.c.response).where(decisions.c.id == decision_id)).first()
        if row is None:
            raise ApiError(404, "not_found", f"no decision {decision_id!r}", "decision_id")
        return row[0]
