"""Database: SQLAlchemy 2 Core tables and engines (SQLite with WAL by default, PostgreSQL by URL).

Two engines share one database: ``main`` (feedback, keys, sessions: ``synchronous=FULL`` on SQLite) and
``log`` for decision / selection audit rows (``synchronous=NORMAL`` by default: in WAL mode a commit then
survives a killed process, and the next FULL commit makes it durable against power loss too, since the WAL is
written in order). On PostgreSQL both are the same engine.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()
ID = sa.String(64)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("hash", sa.String(128), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("scenario", sa.String(100), nullable=False),
    sa.Column("policy_version", sa.String(64), nullable=False),
    sa.Column("info", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("policy_id", ID, nullable=False, index=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("policy_id", "idempotency_key", name="uq_decision_idempotency"),
)

# one row per idempotent batch of decisions (POST /v1/policies/{id}/decisions/batch with Idempotency-Key): the
# stored answer replayed for the same key and body; the batch's decisions are also logged one by one above
decision_batches = sa.Table(
    "decision_batches",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("policy_id", ID, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("policy_id", "idempotency_key", name="uq_decision_batch_idempotency"),
)

sessions = sa.Table(
    "bandit_sessions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("cache", sa.JSON, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # counters, updated in the same transaction as the rows they count; a worker process compares them with
    # what its in-memory session has seen (see api.service.sessions)
    sa.Column("n_selections", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("n_feedback", sa.BigInteger, nullable=False, server_default="0"),
)

selections = sa.Table(
    "bandit_selections",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("session_id", ID, nullable=False, index=True),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("rng", sa.JSON, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

feedback = sa.Table(
    "bandit_feedback",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("selection_id", ID, nullable=False, unique=True),
    sa.Column("session_id", ID, nullable=False, index=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("applied", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


orjson: ModuleType | None
try:
    import orjson
except ImportError:  # pragma: no cover - orjson is in the service extra
    orjson = None


def json_dumps(value: object) -> str:
    """JSON text for the database: orjson when installed (several times faster on long number lists), else the
    standard library (also for integers beyond 64 bits, e.g. generator states)."""
    if orjson is None:
        return json.dumps(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _json_serializer() -> dict:
    return {"json_serializer": json_dumps, "json_deserializer": json.loads}


@dataclass
class Database:
    """``main`` and ``log`` write (see the module docstring); ``read`` is for reads only (on SQLite it never
    takes the write lock; on PostgreSQL it is ``main``)."""

    main: Engine
    log: Engine
    is_sqlite: bool
    read: Engine

    def dispose(self) -> None:
        for engine in {id(e): e for e in (self.main, self.log, self.read)}.values():
            engine.dispose()


def _sqlite_engine(url: str, synchronous: str, writer: threading.Lock | None) -> Engine:
    """An engine whose transactions begin IMMEDIATE (SQLite's write lock up front); ``writer`` (one per database
    file and process, shared by its writing engines) queues this process's writers, so only one thread at a
    time waits for SQLite's lock. ``writer=None``: a read-only engine (deferred BEGIN)."""
    if synchronous.upper() not in SYNC_MODES:
        raise ValueError(f"synchronous: expected one of {SYNC_MODES}, got {synchronous!r}")
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8, max_overflow=8, **_json_serializer()
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below) so SQLite locks up front
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    if writer is None:  # reads: a deferred BEGIN gives a consistent snapshot and never waits for writers (WAL)

        @sa.event.listens_for(engine, "begin")
        def _begin_read(conn) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine

    held = threading.local()  # per thread (a connection is used by one thread at a time), not conn.info, which
    # is unreadable on an invalidated connection: the lock must be released whatever became of the connection

    @sa.event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        if not writer.acquire(timeout=30.0):
            raise sqlite3.OperationalError("database is locked: another writer of this process held it for 30 s")
        try:
            begin_immediate(conn.connection.dbapi_connection)
        except BaseException:
            writer.release()
            raise
        held.writer = True

    @sa.event.listens_for(engine, "commit")
    @sa.event.listens_for(engine, "rollback")
    def _end(conn) -> None:
        if getattr(held, "writer", False):
            held.writer = False
            writer.release()

    return engine


def begin_immediate(dbapi_conn, patience: float = 30.0) -> None:
    """``BEGIN IMMEDIATE`` (take SQLite's write lock up front), retrying every 0.1-2 ms while another process
    holds it. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between attempts, which leaves
    the cores idle for most of a wait when several worker processes write short transactions."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA busy_timeout=0")
        give_up, delay = time.monotonic() + patience, 1e-4
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > give_up:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(2.0 * delay, 2e-3)
    finally:
        cur.execute(f"PRAGMA busy_timeout={int(patience * 1000)}")
        cur.close()


def open_database(url: str, synchronous: str = "FULL", log_synchronous: str = "NORMAL") -> Database:
    """Engines for ``url`` with the schema created if missing."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        writer = threading.Lock()
        main = _sqlite_engine(url, synchronous, writer)
        log = main if log_synchronous.upper() == synchronous.upper() else _sqlite_engine(url, log_synchronous, writer)
        db = Database(main, log, True, _sqlite_engine(url, synchronous, None))
    else:
        main = sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, **_json_serializer())
        db = Database(main, main, False, main)
    metadata.create_all(db.main)
    _add_session_counters(db.main)
    return db


def _add_session_counters(engine: Engine) -> None:
    """Databases written before the session counters existed get them, filled from the logs."""
    present = {c["name"] for c in sa.inspect(engine).get_columns("bandit_sessions")}
    missing = [name for name in ("n_selections", "n_feedback") if name not in present]
    if not missing:
        return
    with engine.begin() as conn:
        for name in missing:
            conn.exec_driver_sql(f"ALTER TABLE bandit_sessions ADD COLUMN {name} BIGINT NOT NULL DEFAULT 0")
        conn.execute(
            sessions.update().values(
                n_selections=sa.select(sa.func.count())
                .select_from(selections)
                .where(selections.c.session_id == sessions.c.id)
                .scalar_subquery(),
                n_feedback=sa.select(sa.func.count())
                .select_from(feedback)
                .where(feedback.c.session_id == sessions.c.id)
                .scalar_subquery(),
            )
        )
