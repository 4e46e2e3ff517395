"""Bandit sessions: create, select, feedback, state; durable, restorable after a crash, and consistent across
worker processes.

Every feedback is acknowledged only after its row is committed (one transaction per feedback; on SQLite with
``synchronous=FULL``). A session is rebuilt lazily on first use: configuration, then the ordered feedback log
replayed through the same code path, then the random generator of the last selection. Several worker
processes may serve one session: each select / feedback transaction first locks the session's row (its
counters), then brings the in-memory session up to date with rows other processes committed (feedback after
the last one applied here, and the generator state of the latest selection), and only then acts.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.service.db import Database, feedback, selections, sessions
from api.service.errors import ApiError
from api.service.hashing import request_hash
from api.service.limits import check_session
from api.service.runtimes import Runtime, build_runtime
from api.service.selection_log import (
    GroupCommitWriter,
    count_selection,
    insert_selection,
    selection_row,
    unknown_session,
)
from scenarios.errors import InvalidInputError


def _numeric_errors_as_input(exc: Exception) -> ApiError:
    return ApiError(422, "invalid_input", f"cannot build the session: {type(exc).__name__}: {exc}"[:500], None)


class SessionService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.writer = GroupCommitWriter(db.log)
        self._live: dict[str, Runtime] = {}
        self._configs: dict[str, tuple[str, dict, float]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    # -------------------------------------------------------------------------------- lifecycle
    def create(self, config: dict, deadline: float | None = None, max_bytes: int | None = None) -> dict:
        """A new session; ``deadline`` (``time.perf_counter()``) and ``max_bytes`` bound its set-up work (422
        ``too_expensive`` beyond, see :mod:`api.service.limits`)."""
        if deadline is not None or max_bytes is not None:
            check_session(config, deadline if deadline is not None else float("inf"), max_bytes or 2**62)
        try:
            rt = build_runtime(config, deadline=deadline, max_bytes=max_bytes)
        except (InvalidInputError, ApiError):
            raise
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            raise _numeric_errors_as_input(exc) from exc
        sid, now = uuid.uuid4().hex, time.time()
        with self.db.main.begin() as conn:
            conn.execute(
                sessions.insert().values(
                    id=sid,
                    kind=config["kind"],
                    config=config,
                    cache=rt.cache(),
                    created_at=now,
                    n_selections=0,
                    n_feedback=0,
                )
            )
        with self._lock:
            self._live[sid] = rt
            self._configs[sid] = (config["kind"], config, now)
        return self.info(sid)

    def _row(self, sid: str) -> tuple[str, dict, float, dict | None]:
        with self.db.read.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.id == sid)).mappings().first()
        if row is None:
            raise unknown_session(sid)
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
        with self.db.read.connect() as conn:
            self._catch_up(conn, sid, rt, *self._counters(conn, sid))
        with self._lock:
            self._configs[sid] = (kind, config, created)
        return rt

    def _counters(self, conn, sid: str, lock: bool = False) -> tuple[int, int]:
        """(selections, feedback) committed for ``sid``; ``lock`` holds its row to the end of the transaction
        (PostgreSQL; SQLite transactions here begin IMMEDIATE, which already excludes other writers)."""
        query = sa.select(sessions.c.n_selections, sessions.c.n_feedback).where(sessions.c.id == sid)
        row = conn.execute(query.with_for_update() if lock and not self.db.is_sqlite else query).first()
        if row is None:
            raise unknown_session(sid)
        return int(row[0]), int(row[1])

    def _catch_up(self, conn, sid: str, rt: Runtime, n_selections: int, n_feedback: int) -> None:
        """Apply the feedback rows ``rt`` has not seen (in sequence order) and adopt the generator state of the
        latest selection, so ``rt`` is what a single process that served every request would hold."""
        if rt.feedback < n_feedback:
            rows = conn.execute(
                sa.select(feedback.c.seq, feedback.c.request, selections.c.response)
                .join(selections, selections.c.id == feedback.c.selection_id)
                .where(feedback.c.session_id == sid, feedback.c.seq > rt.feedback_seq)
                .order_by(feedback.c.seq)
            ).all()
            for seq, request, response in rows:
                rt.apply(np.asarray(response["action"], dtype=np.int64), request, response)
                rt.feedback_seq = int(seq)
        if rt.selections == n_selections:
            return
        rt.selections = n_selections
        if rt.uses_rng:
            last = conn.execute(
                sa.select(selections.c.rng)
                .where(selections.c.session_id == sid)
                .order_by(selections.c.seq.desc())
                .limit(1)
            ).first()
            rt.set_rng(last[0] if last is not None else None)

    def close(self) -> None:
        self.writer.close()

    @contextmanager
    def _locked(self, sid: str) -> Iterator[Runtime]:
        """The live runtime of ``sid`` with its lock held. A thread that waited on the lock of a runtime evicted
        meanwhile (after a failed transaction) takes the rebuilt one instead of acting on the stale copy."""
        while True:
            rt = self.runtime(sid)
            with rt.lock:
                with self._lock:
                    live = self._live.get(sid) is rt
                if live:
                    yield rt
                    return

    def evict(self, sid: str) -> None:
        with self._lock:
            self._live.pop(sid, None)

    def info(self, sid: str) -> dict:
        with self._locked(sid) as rt:
            kind, config, created = self._configs[sid]
            with self.db.read.connect() as conn:
                self._catch_up(conn, sid, rt, *self._counters(conn, sid))
            return {
                "id": sid,
                "kind": kind,
                "n_arms": rt.n_arms,
                "created_at": created,
                "selections": rt.selections,
                "feedback": rt.feedback,
                "config": rt.public_config(config),
                "state": rt.state(),
            }

    # --------------------------------------------------------------------------------- decisions
    @staticmethod
    def _count_selection(conn, sid: str) -> tuple[int, int]:
        """Counters after adding one selection; the update also locks the session's row until commit."""
        counters = count_selection(conn, sid)
        if counters is None:
            raise unknown_session(sid)
        return counters

    def select(self, sid: str, request: dict) -> dict:
        rt = self.runtime(sid)
        if not rt.learns:
            return self._select_planning(sid, rt, request)
        with self._locked(sid) as rt:
            try:
                with self.db.log.begin() as conn:
                    n_selections, n_feedback = self._count_selection(conn, sid)
                    self._catch_up(conn, sid, rt, n_selections - 1, n_feedback)
                    public, extras, rng = rt.select(request.get("states"), request.get("time_to_go"))
                    sel_id, now = uuid.uuid4().hex, time.time()
                    out = {"id": sel_id, "session_id": sid, **public, "created_at": now}
                    insert_selection(conn, sel_id, sid, request, out | {"audit": extras}, rng, now)
            except (InvalidInputError, ApiError):
                raise  # validated before anything changed; the transaction rolled back
            except BaseException:
                self.evict(sid)
                raise
        return out

    def _select_planning(self, sid: str, rt: Runtime, request: dict) -> dict:
        """Sessions that do not learn (Whittle): the allocation depends on the request alone, so it is computed
        outside any lock, and the group-commit writer numbers and logs it with other queued selections."""
        public, extras, rng = rt.select(request.get("states"), request.get("time_to_go"))
        sel_id, now = uuid.uuid4().hex, time.time()

        def finish(round_: int) -> tuple[dict, tuple]:
            out = {"id": sel_id, "session_id": sid, **public, "round": round_, "created_at": now}
            return out, selection_row(sel_id, sid, request, out | {"audit": extras}, rng, now)

        return self.writer.submit(sid, finish)

    def feedback(self, sid: str, selection_id: str, request: dict) -> tuple[dict, bool]:
        """(response, replayed); 404 for an unknown decision, 409 for a conflicting duplicate."""
        digest = request_hash(request)
        with self._locked(sid) as rt:
            try:
                with self.db.main.begin() as conn:
                    counters = self._counters(conn, sid, lock=True)
                    sel = conn.execute(
                        sa.select(selections.c.response).where(
                            selections.c.id == selection_id, selections.c.session_id == sid
                        )
                    ).first()
                    if sel is None:
                        raise ApiError(
                            404, "not_found", f"no decision {selection_id!r} in session {sid!r}", "selection_id"
                        )
                    done = self._stored_feedback(conn, selection_id)
                    if done is not None:
                        return self._replay(rt, sid, selection_id, digest, done), True
                    if request.get("reward") is None and request.get("rewards") is None:
                        raise InvalidInputError("reward", "give either reward (scalar) or rewards (per arm)")
                    if request.get("reward") is not None and request.get("rewards") is not None:
                        raise InvalidInputError("reward", "give reward or rewards, not both")
                    self._catch_up(conn, sid, rt, *counters)
                    applied = rt.apply(np.asarray(sel[0]["action"], dtype=np.int64), request, sel[0])  # validates first
                    now = time.time()
                    inserted = conn.execute(
                        feedback.insert(),
                        {
                            "selection_id": selection_id,
                            "session_id": sid,
                            "request_hash": digest,
                            "request": request,
                            "applied": applied,
                            "created_at": now,
                        },
                    ).inserted_primary_key
                    assert inserted is not None  # a single-row insert always reports its key
                    seq = inserted[0]
                    conn.execute(
                        sessions.update().where(sessions.c.id == sid).values(n_feedback=sessions.c.n_feedback + 1)
                    )
                rt.feedback_seq = int(seq)
            except (InvalidInputError, ApiError):
                raise  # refused before anything changed
            except IntegrityError:
                self.evict(sid)  # applied here but not stored: rebuild from the log on next use
                with self.db.read.connect() as conn:
                    done = self._stored_feedback(conn, selection_id)
                if done is None:
                    raise
                return self._replay(rt, sid, selection_id, digest, done), True
            except BaseException:
                self.evict(sid)
                raise
            rounds = self._rounds(rt)
        return {
            "selection_id": selection_id,
            "session_id": sid,
            "rewards_applied": applied,
            "rounds": rounds,
            "replayed": False,
            "created_at": now,
        }, False

    @staticmethod
    def _stored_feedback(conn, selection_id: str):
        return conn.execute(
            sa.select(feedback.c.request_hash, feedback.c.applied, feedback.c.created_at).where(
                feedback.c.selection_id == selection_id
            )
        ).first()

    def _rounds(self, rt: Runtime) -> int:
        return int(getattr(getattr(rt, "policy", None), "rounds", rt.feedback))

    def _replay(self, rt: Runtime, sid: str, selection_id: str, digest: str, done) -> dict:
        if done[0] != digest:
            raise ApiError(
                409, "conflicting_feedback", f"decision {selection_id!r} already has different feedback", "selection_id"
            )
        return {
            "selection_id": selection_id,
            "session_id": sid,
            "rewards_applied": done[1],
            "rounds": self._rounds(rt),
            "replayed": True,
            "created_at": done[2],
        }
