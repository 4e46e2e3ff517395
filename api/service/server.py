"""Running the service (``redwood serve``) and managing keys from the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from api.service.settings import Settings


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        db_url=args.db, policy_dir=args.policy_dir, engine_pool=args.engine_pool, max_body_bytes=args.max_body_bytes
    )


def manage_keys(args: argparse.Namespace, settings: Settings) -> int | None:
    """Handle ``--create-key`` / ``--list-keys`` / ``--revoke-key``; None when there is nothing to do."""
    if not (args.create_key or args.list_keys or args.revoke_key):
        return None
    from api.service.auth import KeyStore
    from api.service.db import open_database
    from api.service.errors import ApiError

    db = open_database(settings.db_url, settings.sqlite_synchronous, settings.log_synchronous)
    try:
        keys = KeyStore(db, settings.resolved_secret())
        if args.create_key:
            if not args.scopes:  # least privilege: the scopes of a new key are never implied
                print(
                    "error: --create-key: requires --scopes (comma-separated from read, decide, admin)", file=sys.stderr
                )
                return 2
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
            try:
                key, info = keys.create(args.create_key, scopes)
            except ApiError as exc:
                print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
                return 2
            print(json.dumps({"key": key, **info}))
            print("store this key now: it is shown only once", flush=True)
        if args.list_keys:
            print(json.dumps(keys.list(), indent=1))
        if args.revoke_key:
            try:
                revoked = keys.revoke(args.revoke_key)
            except ApiError as exc:  # the last admin key (409): create another admin key first
                print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
                return 2
            print(json.dumps({"revoked": revoked}))
    finally:
        db.dispose()
    return 0


def serve(args: argparse.Namespace) -> int:
    """``redwood serve``: uvicorn on 127.0.0.1 by default, with ``--workers`` processes sharing the socket (bandit
    sessions stay consistent across them through the database, see :mod:`api.service.sessions`)."""
    settings = settings_from_args(args)
    done = manage_keys(args, settings)
    if done is not None:
        return done
    import uvicorn

    workers = args.workers if args.workers is not None else int(os.environ.get("REDWOOD_WORKERS", "1"))
    if workers < 1:
        print("error: --workers: must be at least 1", file=sys.stderr)
        return 2
    run = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 5,
    }
    start_logging(args.log_level, settings.db_url, workers)
    if workers == 1:
        from api.service.app import create_app

        uvicorn.run(create_app(settings), **run)
        return 0
    with metrics_dir():
        prepare_shared_state(settings)
        run_workers(workers, run)
    return 0


def start_logging(level: str, db_url: str, workers: int) -> None:
    """JSON log lines on stderr for the ``redwood`` loggers (this process and, through the environment, every
    worker), and the start-up line: version, database URL without its password, worker count."""
    from api.service.observability import configure_logging, log_startup

    os.environ.update({"REDWOOD_LOG_JSON": "1", "REDWOOD_LOG_LEVEL": level})
    configure_logging(level)
    log_startup(db_url, workers)


@contextlib.contextmanager
def metrics_dir():
    """prometheus_client's multiprocess mode for worker processes: ``PROMETHEUS_MULTIPROC_DIR`` set to a fresh
    temporary directory (removed afterwards) before the workers start, unless the operator set one."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield os.environ["PROMETHEUS_MULTIPROC_DIR"]
        return
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="redwood-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield path
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


def run_workers(workers: int, run: dict) -> None:
    """``uvicorn.run`` with ``workers`` processes, except that the shared listening socket gets TCP_NODELAY
    (accepted connections inherit it). uvicorn binds that socket without the TCP protocol number, so asyncio
    does not set TCP_NODELAY on the workers' connections, and every response written in two parts then waits
    for the client's delayed ACK: about 40 ms per request (measured: 44 ms for ``GET /v1/version`` with two
    workers, 1.3 ms with one)."""
    import inspect
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("api.service.app:create_app", factory=True, workers=workers, **run)
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.30 style
        # the installed uvicorn's types describe the newer signature only
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        Multiprocess(config, sockets=[sock]).run()


def prepare_shared_state(settings: Settings) -> None:
    """Before worker processes start: create the schema, resolve the key secret and store the bootstrap key
    once (not racing in every worker), then hand the settings to the workers through the environment."""
    from api.service.auth import KeyStore
    from api.service.db import open_database

    secret = settings.resolved_secret()
    db = open_database(settings.db_url, settings.sqlite_synchronous, settings.log_synchronous)
    try:
        if settings.bootstrap_key:
            KeyStore(db, secret).create("bootstrap", ["admin"], key=settings.bootstrap_key)
    finally:
        db.dispose()
    os.environ.update(
        {
            "REDWOOD_DB_URL": settings.db_url,
            "REDWOOD_POLICY_DIR": str(settings.policy_dir),
            "REDWOOD_SECRET": secret,
            "REDWOOD_ENGINE_POOL": str(settings.engine_pool),
            "REDWOOD_MAX_BODY_BYTES": str(settings.max_body_bytes),
        }
    )
    os.environ.pop("REDWOOD_BOOTSTRAP_KEY", None)


def add_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    q.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    q.add_argument("--db", default=None, help="SQLAlchemy URL (default sqlite:///redwood.db or $REDWOOD_DB_URL)")
    q.add_argument("--policy-dir", default=None, help="checkpoints may be registered only from here")
    q.add_argument("--engine-pool", type=int, default=None, help="engines per policy and worker (concurrent decisions)")
    q.add_argument(
        "--workers", type=int, default=None, help="server processes sharing the port (default 1, or $REDWOOD_WORKERS)"
    )
    q.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help="largest accepted request body in bytes (default 8 MiB, or $REDWOOD_MAX_BODY_BYTES)",
    )
    q.add_argument("--log-level", default="warning", help="uvicorn log level")
    q.add_argument("--create-key", metavar="NAME", help="create an API key (needs --scopes), print it once, and exit")
    q.add_argument(
        "--scopes",
        metavar="SCOPE,...",
        default=None,
        help="scopes of the key made by --create-key, required with it: comma-separated from read, decide, admin",
    )
    q.add_argument("--list-keys", action="store_true", help="list API keys and exit")
    q.add_argument("--revoke-key", metavar="ID", help="revoke an API key and exit")
