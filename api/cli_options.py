"""Checks and option parsing shared by the ``redwood`` commands (:mod:`api.cli`, :mod:`api.cli_evaluate`):
mutually exclusive arguments, ``KEY=VALUE`` training options, loading a checkpoint, the sweep executor."""

from __future__ import annotations

import argparse
import json

from api.cli_args import CliError, CliParser, given


def exclusive(args: argparse.Namespace, parser: CliParser, first: str, second: str) -> None:
    """Refuse ``first`` and ``second`` given together (one of them would be silently ignored)."""
    if first in given(args) and second in given(args):
        raise CliError(parser.option_name(first), f"not allowed with argument {parser.option_name(second)}")


def only_with(
    args: argparse.Namespace, parser: CliParser, dests: set[str] | list[str], condition: bool, requirement: str
) -> None:
    """Refuse any of ``dests`` given when ``condition`` is false (it would be ignored)."""
    for dest in sorted(set(dests) & given(args)):
        if not condition:
            raise CliError(parser.option_name(dest), f"only meaningful with {requirement}")


def check_executor(args: argparse.Namespace, parser: CliParser) -> None:
    only_with(args, parser, ["ray_address", "num_cpus"], args.executor == "ray", "--executor ray")


def key_values(
    items: list[str] | None, argument: str, allowed: set[str] | None = None, key_kind: str = "a name"
) -> dict:
    """``KEY=VALUE`` pairs, VALUE parsed as JSON when it can be; ``allowed`` (described as ``key_kind``)
    limits the keys."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or (allowed is not None and key not in allowed):
            raise CliError(argument, f"expected KEY=VALUE with {key_kind} as KEY, got {item!r}")
        if key in out:
            raise CliError(argument, f"{key} given twice")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def value_fits(value: object, default: object) -> bool:
    """Whether ``value`` has the type of a config field whose default is ``default``."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (tuple, list)):
        return isinstance(value, list)
    return isinstance(value, type(default))


def dqn_options(items: list[str] | None, episodes_flag: str) -> dict:
    """``--dqn-option`` pairs overriding DQNConfig fields, type-checked against the fields' defaults."""
    from engine import DQNConfig

    defaults = DQNConfig().to_dict()
    out = key_values(items, "--dqn-option", set(defaults), "a DQNConfig field")
    for key, value in out.items():
        if key in ("hidden", "episodes"):
            raise CliError("--dqn-option", f"{key} is set by {'--hidden' if key == 'hidden' else episodes_flag}")
        if not value_fits(value, defaults[key]):
            raise CliError(
                "--dqn-option", f"{key}={json.dumps(value)}: expected a value like {json.dumps(defaults[key])}"
            )
    return out


def ac_options(items: list[str] | None) -> dict:
    """``--ac-option`` pairs overriding ActorCriticConfig fields, type-checked against the fields' defaults
    (a field whose default is None takes a number or null)."""
    from dataclasses import asdict

    from engine import ActorCriticConfig

    defaults = asdict(ActorCriticConfig())
    out = key_values(items, "--ac-option", set(defaults), "an ActorCriticConfig field")
    for key, value in out.items():
        default = defaults[key]
        fits = (value is None or isinstance(value, (int, float))) if default is None else value_fits(value, default)
        if isinstance(default, dict):
            fits = isinstance(value, dict)
        if not fits:
            raise CliError("--ac-option", f"{key}={json.dumps(value)}: expected a value like {json.dumps(default)}")
    return out


def load_policy(path: str, argument: str = "CHECKPOINT"):
    from engine import Engine

    try:
        return Engine.load(path)
    except FileNotFoundError as exc:
        raise CliError(argument, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise CliError(argument, f"{path}: config.json is not valid JSON ({exc.msg})") from None


def executor_from_args(args: argparse.Namespace):
    from engine.experiments.executors import make_executor

    return make_executor(args.executor, address=args.ray_address, num_cpus=args.num_cpus, progress=not args.quiet)
