"""``redwood serve``: its arguments are the service's (:func:`api.service.server.add_arguments`), parsed here
so that the service (FastAPI, torch) is imported only when this command runs; this module adds the checks
that turn a bad or contradictory command line into one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
from pathlib import Path

from api.cli_args import CliParser, given

KEY_ACTIONS = ("create_key", "list_keys", "revoke_key")
KEY_SETTINGS = ("db", "scopes")  # what the key actions use; every other option only matters when serving


def build_serve_parser() -> CliParser:
    from api.service.server import add_arguments

    p = CliParser(
        prog="redwood serve",
        description="Run the REST service on 127.0.0.1, or manage its API keys "
        "(--create-key, --list-keys, --revoke-key) and exit.",
    )
    add_arguments(p)
    return p


def check_serve_args(args: argparse.Namespace, p: CliParser) -> str | None:
    """The reason the serve command line is refused, or None."""
    from api.service.auth import SCOPES

    explicit = given(args)
    if args.create_key is not None and args.scopes is None:
        return f"argument --create-key: requires --scopes (comma-separated from {', '.join(SCOPES)})"
    if args.scopes is not None:
        if args.create_key is None:
            return "argument --scopes: only meaningful with --create-key"
        scopes = [s.strip() for s in args.scopes.split(",")]
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            return f"argument --scopes: unknown scope {bad[0]!r}; choices: {', '.join(SCOPES)}"
    if args.create_key is not None and not args.create_key.strip():
        return "argument --create-key: the key name must not be empty"
    keys = [d for d in KEY_ACTIONS if d in explicit]
    if keys:
        serving = sorted(explicit - set(KEY_ACTIONS) - set(KEY_SETTINGS))
        if serving:
            return (
                f"argument {p.option_name(serving[0])}: not allowed with argument {p.option_name(keys[0])} "
                f"(key management does not start the service)"
            )
        return None
    return _check_serving_values(args)


def _check_serving_values(args: argparse.Namespace) -> str | None:
    if not 0 <= args.port <= 65535:
        return f"argument --port: expected a port number 0..65535, got {args.port}"
    for dest, value in (
        ("workers", args.workers),
        ("engine_pool", args.engine_pool),
        ("max_body_bytes", args.max_body_bytes),
    ):
        if value is not None and value < 1:
            return f"argument --{dest.replace('_', '-')}: expected an integer >= 1, got {value}"
    from uvicorn.config import LOG_LEVELS

    if args.log_level not in LOG_LEVELS:
        return f"argument --log-level: invalid choice {args.log_level!r}; choices: {', '.join(LOG_LEVELS)}"
    if args.policy_dir is not None and Path(args.policy_dir).exists() and not Path(args.policy_dir).is_dir():
        return f"argument --policy-dir: not a directory: {args.policy_dir!r}"
    if args.db is not None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(args.db)
        except ArgumentError:
            return f"argument --db: not an SQLAlchemy database URL: {args.db!r}"
    return None


def cmd_serve(argv: list[str]) -> int:
    import sys

    p = build_serve_parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # --help, or a bad command line already reported by CliParser.error
        return int(exc.code or 0)
    reason = check_serve_args(args, p)
    if reason is not None:
        print(f"{p.prog}: error: {reason}", file=sys.stderr)
        return 2
    from api.service.server import serve

    return serve(args)
