"""Bandit sessions: create, select, feedback, state; durable and restorable after a crash.

Every feedback is acknowledged only after its row is committed (one transaction per feedback; on SQLite with
``synchronous=FULL``). A session is rebuilt lazily on first use after a restart: configuration, then the
ordered feedback log replayed through the same code path, then the random generator of the last selection.
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.service.db import Database, feedback, selections, sessions
from api.service.errors import ApiError
from api.service.hashing import request_hash
from api.service.runtimes import Runtime, build_runtime
from scenarios.errors import InvalidInputError


def _numeric_errors_as_input(exc: Exception) -> ApiError:
    return ApiError(422, "invalid_input", f"cannot build the session: {type(exc).__name__}: {exc}"[:500], None)


class SessionService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._live: dict[str, Runtime] = {}
        self._configs: dict[str, tuple[str, dict, float]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    # -------------------------------------------------------------------------------- lifecycle
    def create(self, config: dict) -> dict:
        try:
            rt = build_runtime(config)
        except (InvalidInputError, ApiError):
            raise
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            raise _numeric_errors_as_input(exc) from exc
        sid, now = uuid.uuid4().hex, time.time()
        with self.db.main.begin() as conn:
            conn.execute(sessions.insert().values(id=sid, kind=config["kind"], config=config, cache=rt.cache(),
                                                  created_at=now))
        with self._lock:
            self._live[sid] = rt
            self._configs[sid] = (config["kind"], config, now)
        return self.info(sid)

    def _row(self, sid: str) -> tuple[str, dict, float, dict | None]:
        with self.db.main.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.id == sid)).mappings().first()
        if row is None:
            raise ApiError(404, "not_found", f"no bandit session {sid!r}", "session_id")
        return row["kind"], row["config"], row["created_at"], row["cache"]

    def runtime(self, sid: str) -> Runtime:
        """The live session, restored from the database on first use."""
        with self._lock:
            rt = self._live.get(sid)
            if rt is not None:
                return rt
            gate = self._loading.setdefault(sid, threading.Lock())
        with gate:
            with self._lock:
                rt = self._live.get(sid)
            if rt is None:
                rt = self._restore(sid)
                with self._lock:
                    self._live[sid] = rt
        return rt

    def _restore(self, sid: str) -> Runtime:
        kind, config, created, cache = self._row(sid)
        rt = build_runtime(config, cache)
        with self.db.main.connect() as conn:
            n_sel = conn.execute(sa.select(sa.func.count()).select_from(selections)
                                 .where(selections.c.session_id == sid)).scalar_one()
            last = conn.execute(sa.select(selections.c.rng).where(selections.c.session_id == sid)
                                .order_by(selections.c.seq.desc()).limit(1)).first()
            log = conn.execute(
                sa.select(feedback.c.request, selections.c.response)
                .join(selections, selections.c.id == feedback.c.selection_id)
                .where(feedback.c.session_id == sid).order_by(feedback.c.seq)).all()
        for request, response in log:
            rt.apply(np.asarray(response["action"], dtype=np.int64), request)
        rt.selections = int(n_sel)
        rt.set_rng(last[0] if last is not None else None)
        with self._lock:
            self._configs[sid] = (kind, config, created)
        return rt

    def evict(self, sid: str) -> None:
        with self._lock:
            self._live.pop(sid, None)

    def info(self, sid: str) -> dict:
        rt = self.runtime(sid)
        kind, config, created = self._configs[sid]
        with rt.lock:
            return {"id": sid, "kind": kind, "n_arms": rt.n_arms, "created_at": created,
                    "selections": rt.selections, "feedback": rt.feedback, "config": rt.public_config(config),
                    "state": rt.state()}

    # --------------------------------------------------------------------------------- decisions
    def select(self, sid: str, request: dict) -> dict:
        rt = self.runtime(sid)
        with rt.lock:
            public, extras, rng = rt.select(request.get("states"), request.get("time_to_go"))
            sel_id, now = uuid.uuid4().hex, time.time()
            out = {"id": sel_id, "session_id": sid, **public, "created_at": now}
            try:
                with self.db.log.begin() as conn:
                    conn.execute(selections.insert(), {"id": sel_id, "session_id": sid, "request": request,
                                                       "response": out | {"audit": extras}, "rng": rng,
                                                       "created_at": now})
            except BaseException:
                self.evict(sid)
                raise
        return out

    def feedback(self, sid: str, selection_id: str, request: dict) -> tuple[dict, bool]:
        """(response, replayed); 404 for an unknown decision, 409 for a conflicting duplicate."""
        rt = self.runtime(sid)
        digest = request_hash(request)
        with rt.lock:
            with self.db.main.connect() as conn:
                sel = conn.execute(sa.select(selections.c.response).where(
                    selections.c.id == selection_id, selections.c.session_id == sid)).first()
                if sel is None:
                    raise ApiError(404, "not_found", f"no decision {selection_id!r} in session {sid!r}",
                                   "selection_id")
                done = conn.execute(sa.select(feedback.c.request_hash, feedback.c.applied, feedback.c.created_at)
                                    .where(feedback.c.selection_id == selection_id)).first()
            if done is not None:
                return self._replay(sid, selection_id, digest, done), True
            if request.get("reward") is None and request.get("rewards") is None:
                raise InvalidInputError("reward", "give either reward (scalar) or rewards (per arm)")
            if request.get("reward") is not None and request.get("rewards") is not None:
                raise InvalidInputError("reward", "give reward or rewards, not both")
            action = np.asarray(sel[0]["action"], dtype=np.int64)
            try:
                applied = rt.apply(action, request)  # validates before it mutates
            except InvalidInputError:
                raise
            except BaseException:
                self.evict(sid)  # half-applied: rebuild from the log on next use
                raise
            now = time.time()
            try:
                with self.db.main.begin() as conn:
                    conn.execute(feedback.insert(), {"selection_id": selection_id, "session_id": sid,
                                                     "request_hash": digest, "request": request,
                                                     "applied": applied, "created_at": now})
            except IntegrityError:
                self.evict(sid)
                with self.db.main.connect() as conn:
                    done = conn.execute(sa.select(feedback.c.request_hash, feedback.c.applied,
                                                  feedback.c.created_at)
                                        .where(feedback.c.selection_id == selection_id)).first()
                if done is None:
                    raise
                return self._replay(sid, selection_id, digest, done), True
            except BaseException:
                self.evict(sid)
                raise
            rounds = self._rounds(rt)
        return {"selection_id": selection_id, "session_id": sid, "rewards_applied": applied, "rounds": rounds,
                "replayed": False, "created_at": now}, False

    def _rounds(self, rt: Runtime) -> int:
        return int(getattr(getattr(rt, "policy", None), "rounds", rt.feedback))

    def _replay(self, sid: str, selection_id: str, digest: str, done) -> dict:
        if done[0] != digest:
            raise ApiError(409, "conflicting_feedback",
                           f"decision {selection_id!r} already has different feedback", "selection_id")
        rt = self.runtime(sid)
        return {"selection_id": selection_id, "session_id": sid, "rewards_applied": done[1],
                "rounds": self._rounds(rt), "replayed": True, "created_at": done[2]}
