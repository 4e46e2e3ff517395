"""Argument parsing of the ``redwood`` command line (see :mod:`api.cli`).

Building the parser imports nothing heavy: choices that live in registries behind torch (selectors,
executors) are :class:`~api.cli_choices.LazyChoices`, loaded when an argument is checked or its help is printed, and the
scenario names come from ``scenarios/registry.py`` read without importing the ``scenarios`` package.
Every bad value is reported as ONE line ``redwood <command>: error: argument <name>: <reason>``, exit 2.
"""

from __future__ import annotations

import argparse
import re

from api.cli_choices import DOMAINS, EXECUTORS, METHODS, PLANNERS, SCENARIOS, SELECTORS
from api.cli_types import (
    existing_dir,
    existing_file,
    hidden_widths,
    int_at_least,
    output_dir,
    output_file,
    seconds,
    state,
)

GIVEN = "given_"  # namespace attribute: dests of the arguments given on the command line


class CliError(Exception):
    """A bad command line found after parsing: ``argument`` (as spelt on the command line) and ``reason``."""

    def __init__(self, argument: str | None, reason: str) -> None:
        self.argument, self.reason = argument, reason
        super().__init__(f"argument {argument}: {reason}" if argument else reason)


class _StoreGiven(argparse._StoreAction):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        super().__call__(parser, namespace, values, option_string)
        if option_string is not None or (values != [] and values is not self.default):  # positionals: non-empty
            given(namespace).add(self.dest)


class _StoreTrueGiven(argparse._StoreTrueAction):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        super().__call__(parser, namespace, values, option_string)
        given(namespace).add(self.dest)


def given(args: argparse.Namespace) -> set[str]:
    """Dests of the arguments given explicitly (not left at their defaults)."""
    if not hasattr(args, GIVEN):
        setattr(args, GIVEN, set())
    return getattr(args, GIVEN)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` except for defaults that mean "not given" (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "%(default)" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action) or ""


class CliParser(argparse.ArgumentParser):
    """One-line errors (no usage dump), defaults in the help, and tracking of explicitly given arguments."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.commands: dict[str, CliParser] = {}  # subcommand parsers, by name
        self.only_with_domains: set[str] = set()  # evaluate: the sweep's arguments
        self.register("action", None, _StoreGiven)
        self.register("action", "store", _StoreGiven)
        self.register("action", "store_true", _StoreTrueGiven)
        # values such as "-1,0,3" (a --state) are values, not options, like argparse's own "-1" and "-.5"
        self._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+(,\s*-?\d+)+$")

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def option_name(self, dest: str) -> str | None:
        """How the argument stored in ``dest`` is spelt on the command line (None: no such argument)."""
        for action in self._actions:
            if action.dest == dest and not isinstance(action, argparse._HelpAction):
                if action.option_strings:
                    return max(action.option_strings, key=len)
                return action.metavar if isinstance(action.metavar, str) else action.dest
        return None


# ------------------------------------------------------------------------------------------------- parser
class _Recording:
    """An argument group that records the dests of its arguments."""

    def __init__(self, group: argparse._ArgumentGroup) -> None:
        self.group = group
        self.dests: set[str] = set()

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = self.group.add_argument(*args, **kwargs)
        self.dests.add(action.dest)
        return action


def _instance_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("scenario", choices=SCENARIOS, metavar="SCENARIO", help="scenario; choices: %(choices)s")
    q.add_argument(
        "--instance",
        type=existing_file,
        metavar="FILE",
        help="instance JSON file, instead of the seeded generator (excludes --n-arms and --budget)",
    )
    q.add_argument("--n-arms", type=int_at_least(1), default=20, help="generator: number of arms J")
    q.add_argument("--budget", type=int_at_least(1), default=5, help="generator: budget B (e.g. workers)")


def _executor_args(q: argparse.ArgumentParser | _Recording, what: str) -> None:
    q.add_argument(
        "--executor",
        choices=EXECUTORS,
        metavar="NAME",
        default="serial",
        help=f"where {what} run; choices: %(choices)s",
    )
    q.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="Ray cluster address ('auto', 'ray://host:10001'); only with --executor ray (default: a local cluster)",
    )
    q.add_argument(
        "--num-cpus",
        type=int_at_least(1),
        help="CPUs of the local Ray cluster; only with --executor ray (default: all)",
    )


def _training_args(q: argparse.ArgumentParser | _Recording, episodes_flag: str) -> None:
    q.add_argument(
        "--hidden",
        type=hidden_widths,
        default="16,32",
        metavar="W1,W2,...",
        help="hidden layer widths of the Q-network",
    )
    q.add_argument(
        "--dqn-option",
        nargs="+",
        metavar="KEY=VALUE",
        help=f"override DQNConfig fields (VALUE as JSON; not hidden or episodes: use --hidden and {episodes_flag})",
    )


def build_parser() -> CliParser:
    p = CliParser(prog="redwood", description="Redwood: combinatorial decisions with a Q-network and a MILP.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kwargs) -> CliParser:
        p.commands[name] = sub.add_parser(name, help=help, description=help, **kwargs)
        return p.commands[name]

    command("scenarios", "list the scenarios with a one-line description")

    q = command("train", "train a policy and write a checkpoint directory")
    _instance_args(q)
    q.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="seed of the instance generator and of training (excludes --seeds)",
    )
    q.add_argument(
        "--seeds",
        type=int_at_least(0),
        nargs="+",
        metavar="SEED",
        help="train one checkpoint per seed (distinct) on the executor, under OUT/seed_<s>/",
    )
    q.add_argument(
        "--scenario-option",
        nargs="+",
        metavar="KEY=VALUE",
        help="more instance-generator parameters (e.g. n_actuators=8 for maze); not with --instance or --seeds",
    )
    q.add_argument("--episodes", type=int_at_least(1), default=100, help="training episodes")
    q.add_argument(
        "--planner",
        choices=PLANNERS,
        metavar="NAME",
        help="write a planner policy instead (no training; not with training options); choices: %(choices)s",
    )
    _training_args(q, "--episodes")
    q.add_argument(
        "--lookahead",
        action="store_true",
        help="train a lookahead policy instead: the best planner improved by one step of lookahead on a value "
        "fitted to its returns (kept only if it beats the planner on held-out episodes)",
    )
    q.add_argument(
        "--lookahead-option",
        nargs="+",
        metavar="KEY=VALUE",
        help="with --lookahead: override LookaheadConfig fields, e.g. rollout_episodes=400 planner=lagrangian",
    )
    q.add_argument(
        "--ac-option",
        nargs="+",
        metavar="KEY=VALUE",
        help="integer-box scenarios (inventory, maze: trained by the actor-critic): override ActorCriticConfig "
        "fields, e.g. total_steps=2000 (VALUE as JSON); --episodes, --hidden and --dqn-option are for the DQN",
    )
    q.add_argument(
        "--out",
        required=True,
        type=output_dir,
        metavar="DIR",
        help="checkpoint directory (with --seeds: the parent of seed_<s>/)",
    )
    q.add_argument(
        "--threads",
        type=int_at_least(1),
        default=1,
        help="torch CPU threads (not with --seeds: each seed trains single-threaded)",
    )
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    _executor_args(q, "the --seeds trainings")

    q = command(
        "evaluate",
        "evaluate checkpoints against the baselines (common random numbers), or with "
        "--domains train and evaluate a domains x seeds sweep",
    )
    q.add_argument(
        "checkpoints",
        nargs="*",
        type=existing_dir,
        metavar="CHECKPOINT",
        help="checkpoint directories written by 'redwood train' (not with --domains)",
    )
    q.add_argument("--episodes", type=int_at_least(1), default=50, help="evaluation episodes per method")
    q.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="seed of the evaluation episodes (sweep: also of the instance and training)",
    )
    q.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        metavar="METHOD",
        help="evaluate only these methods (default: all; the planners that do not apply to a "
        "scenario are refused for it); choices: %(choices)s",
    )
    q.add_argument(
        "--time-limit",
        type=seconds,
        metavar="SECONDS",
        help="solver time limit per dqn_mip decision, in seconds (default: none)",
    )
    q.add_argument("--json", type=output_file, metavar="FILE", help="write the results as JSON")
    q.add_argument("--markdown", type=output_file, metavar="FILE", help="write the results table as Markdown")
    q.add_argument("--plot", type=output_file, metavar="FILE", help="write a plot of the results (PNG)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    sweep = _Recording(q.add_argument_group("sweep (with --domains only)"))
    sweep.add_argument(
        "--domains",
        nargs="+",
        choices=DOMAINS,
        metavar="SCENARIO",
        help="train and evaluate these scenarios instead of checkpoints; choices: %(choices)s",
    )
    sweep.add_argument(
        "--seeds",
        type=int_at_least(0),
        nargs="+",
        metavar="SEED",
        help="sweep seeds (instance and training; excludes --seed) (default: --seed)",
    )
    sweep.add_argument("--n-arms", type=int_at_least(1), default=20, help="number of arms J")
    sweep.add_argument("--budget", type=int_at_least(1), default=5, help="budget B")
    sweep.add_argument("--horizon", type=int_at_least(1), default=20, help="episode length")
    sweep.add_argument("--train-episodes", type=int_at_least(1), default=100, help="training episodes")
    _training_args(sweep, "--train-episodes")
    sweep.add_argument(
        "--scenario-option",
        nargs="+",
        metavar="KEY=VALUE",
        help="more instance-generator parameters for every swept domain (e.g. n_actions=6)",
    )
    sweep.add_argument(
        "--exact-max-arms",
        type=int_at_least(0),
        default=6,
        help="also compute the exact DP optimum when n_arms <= this",
    )
    _executor_args(sweep, "the sweep's tasks")
    q.only_with_domains = sweep.dests - {"domains"}

    q = command("decide", "decide one state with a checkpoint and print the decision as JSON")
    q.add_argument(
        "checkpoint", type=existing_dir, metavar="CHECKPOINT", help="checkpoint directory written by 'redwood train'"
    )
    q.add_argument(
        "--state",
        required=True,
        type=state,
        metavar="STATE",
        help="integers 's_1,...,s_J,time_to_go' (arm states, then the steps to go) or a JSON list",
    )
    q.add_argument(
        "--selector",
        choices=SELECTORS,
        metavar="NAME",
        default=None,
        help="action selector (default: the policy's own, mip for trained and planner policies); choices: %(choices)s",
    )
    q.add_argument("--time-limit", type=seconds, metavar="SECONDS", help="solver time limit in seconds (default: none)")

    q = command("quickstart", "main job: train + evaluate a capacity policy, write a report")
    q.add_argument("--n-arms", type=int_at_least(1), default=20, help="number of arms J")
    q.add_argument("--budget", type=int_at_least(1), default=5, help="budget B (workers)")
    q.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the instance, training and evaluation")
    q.add_argument("--episodes", type=int_at_least(1), default=100, help="training episodes")
    q.add_argument("--eval-episodes", type=int_at_least(1), default=50, help="evaluation episodes per method")
    q.add_argument(
        "--out",
        type=output_dir,
        default="runs/quickstart",
        metavar="DIR",
        help="output directory (policy/, evaluation.json, .md, .png)",
    )
    q.add_argument("--threads", type=int_at_least(1), default=1, help="torch CPU threads")
    q.add_argument("--quiet", action="store_true", help="no progress bars")

    # its arguments belong to the service (api/service/server.py): parsed by 'redwood serve' itself, so that
    # the service is imported only when it is used
    command(
        "serve", "run the REST service on 127.0.0.1, or manage its API keys ('redwood serve --help')", add_help=False
    )

    q = command("bench", "run a benchmark script from bench/ (no name: list them)")
    q.add_argument("name", nargs="?", metavar="NAME", help="benchmark name (bench_<NAME>.py)")
    q.add_argument("rest", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments passed to the benchmark")
    q.add_argument("--dir", type=existing_dir, default="bench", metavar="DIR", help="benchmark directory")
    return p


def subparser(parser: CliParser, name: str) -> CliParser:
    return parser.commands[name]
