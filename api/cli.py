"""Command line: ``redwood scenarios | train | evaluate | decide | quickstart | serve | bench``.

Parsing lives in :mod:`api.cli_args`, shared checks in :mod:`api.cli_options`, ``evaluate`` and ``decide`` in
:mod:`api.cli_evaluate`; none imports anything heavy at start-up, each command imports what it needs. A bad
command line, and the library's :class:`scenarios.errors.InvalidInputError` /
:class:`~scenarios.errors.InfeasibleActionError`, end as ONE line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any

from api.cli_args import CliError, CliParser, build_parser, given, subparser
from api.cli_evaluate import cmd_decide, cmd_evaluate, run_evaluation, write_report_files
from api.cli_options import (
    ac_options,
    check_executor,
    dqn_options,
    exclusive,
    executor_from_args,
    key_values,
    only_with,
)


# ---------------------------------------------------------------------------------------------- commands
def cmd_scenarios(args: argparse.Namespace, parser: CliParser) -> int:
    from api.cli_choices import scenario_registry

    registry = scenario_registry()
    for name in registry.available():
        print(f"{name:20s} {registry.summary(name)}")
    return 0


def _generator_params(args: argparse.Namespace, parser: CliParser) -> dict:
    """Parameters for the scenario's instance generator: --n-arms/--budget/--seed where it takes them (given
    to a generator without them: refused), plus --scenario-option pairs checked against its signature."""
    import inspect

    from scenarios import instance_class

    cls: Any = instance_class(args.scenario)
    signature = inspect.signature(cls.generate).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values())
    accepted = [name for name in signature if name != "cls"]
    params = {}
    for dest in ("n_arms", "budget", "seed"):
        if takes_any or dest in signature:
            params[dest] = getattr(args, dest)
        elif dest in given(args) and not args.instance:
            raise CliError(
                parser.option_name(dest),
                f"the {args.scenario} generator takes no {dest}; its parameters: {', '.join(accepted)}",
            )
    options = key_values(
        args.scenario_option,
        "--scenario-option",
        None if takes_any else set(accepted),
        f"a parameter of the {args.scenario} generator ({', '.join(accepted)})",
    )
    for key in set(options) & set(params):
        raise CliError("--scenario-option", f"{key} is set by {parser.option_name(key)}")
    return {**params, **options}


def _make_env(args: argparse.Namespace, parser: CliParser):
    from scenarios import make

    if args.instance:
        return make(args.scenario, instance=Path(args.instance).read_text())
    return make(args.scenario, **_generator_params(args, parser))


def _train_seeds(args: argparse.Namespace, config) -> int:
    """``train --seeds``: one checkpoint per seed under ``--out`` (seed_<s>/), fanned out on the executor."""
    from engine.experiments.sweep import train_task

    base = {
        "scenario": args.scenario,
        "config": config.to_dict(),
        "n_arms": args.n_arms,
        "budget": args.budget,
        "instance": Path(args.instance).read_text() if args.instance else None,
    }
    with executor_from_args(args) as executor:
        results = executor.map(train_task, [{**base, "seed": s} for s in args.seeds], desc="train")
    for res in results:
        path = Path(args.out) / f"seed_{res['seed']}"
        path.mkdir(parents=True, exist_ok=True)
        for name, data in res.pop("files").items():
            (path / name).write_bytes(data)
        print(json.dumps({"checkpoint": str(path), **{k: v for k, v in res.items() if k != "seed"}}))
    return 0


def cmd_train(args: argparse.Namespace, parser: CliParser) -> int:
    for generator_arg in ("n_arms", "budget", "scenario_option"):
        exclusive(args, parser, generator_arg, "instance")
    for single_arg in ("seed", "threads", "scenario_option"):
        exclusive(args, parser, single_arg, "seeds")
    only_with(args, parser, ["executor", "ray_address", "num_cpus"], bool(args.seeds), "--seeds")
    check_executor(args, parser)
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise CliError("--seeds", "seeds must be distinct")
    dqn_settings = dqn_options(args.dqn_option, "--episodes")
    ac_settings = ac_options(args.ac_option)
    if args.planner:
        return _write_planner(args, parser)
    only_with(args, parser, ["lookahead_option"], args.lookahead, "--lookahead")
    if args.lookahead:
        return _train_lookahead(args, parser)

    import numpy as np
    import torch

    from engine import DQNConfig, trainers
    from engine.engine import train_dqn

    env = _make_env(args, parser)
    if trainers.family(env) == "box":
        return _train_box(args, parser, env, ac_settings)
    only_with(args, parser, ["ac_option"], False, "an integer-box scenario (trained by the actor-critic)")
    config = DQNConfig.from_dict(
        {**DQNConfig().to_dict(), **dqn_settings, "hidden": args.hidden, "episodes": args.episodes}
    )
    if args.seeds:
        if not args.instance and set(_generator_params(args, parser)) != {"n_arms", "budget", "seed"}:
            raise CliError(
                "--seeds",
                f"the {args.scenario} generator does not take --n-arms and --budget, which "
                f"--seeds passes to every seed's training; give an --instance",
            )
        return _train_seeds(args, config)
    torch.set_num_threads(args.threads)
    engine = train_dqn(env, config, seed=args.seed, progress=not args.quiet)
    path = engine.save(args.out)
    s = engine.training_summary
    print(
        json.dumps(
            {
                "checkpoint": str(path),
                "policy_version": engine.policy_version,
                "seconds": round(s["seconds"], 1),
                "act_decisions": s["act_decisions"],
                "last10_mean_return": float(np.mean(s["episode_returns"][-10:])),
            }
        )
    )
    return 0


def _train_box(args: argparse.Namespace, parser: CliParser, env, ac_settings: dict) -> int:
    """``train`` on an integer-box scenario: the Q-actor-critic with ``--ac-option`` settings (its length is
    ``total_steps`` transitions, not episodes)."""
    import time

    import numpy as np
    import torch

    from engine import ActorCriticAgent, ActorCriticConfig

    requirement = "allocation scenarios (trained by the DQN; integer-box scenarios take --ac-option)"
    only_with(args, parser, ["episodes", "hidden", "dqn_option", "seeds"], False, requirement)
    config = ActorCriticConfig.from_dict(ac_settings)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    agent = ActorCriticAgent.train(env, config, seed=args.seed, progress=not args.quiet)
    path = agent.save(args.out)
    returns = agent.training_returns[-10:]
    print(
        json.dumps(
            {
                "checkpoint": str(path),
                "kind": agent.kind,
                "policy_version": agent.policy_version,
                "seconds": round(time.perf_counter() - start, 1),
                "episodes": len(agent.training_returns),
                "last10_mean_return": float(np.mean(returns)) if returns else None,
            }
        )
    )
    return 0


def _write_planner(args: argparse.Namespace, parser: CliParser) -> int:
    """``train --planner NAME``: a planner policy (no training) saved like a checkpoint."""
    for training_arg in ("seeds", "episodes", "hidden", "dqn_option", "ac_option", "threads"):
        exclusive(args, parser, training_arg, "planner")
    from engine import Engine

    policy = Engine.plan(_make_env(args, parser), args.planner)
    path = policy.save(args.out)
    print(json.dumps({"checkpoint": str(path), "planner": args.planner, "policy_version": policy.policy_version}))
    return 0


def _train_lookahead(args: argparse.Namespace, parser: CliParser) -> int:
    """``train --lookahead``: the planner-plus-learned-value lookahead policy (engine/lookahead)."""
    for other in ("seeds", "episodes", "hidden", "dqn_option", "ac_option"):
        exclusive(args, parser, other, "lookahead")
    import torch

    from engine.lookahead import LookaheadConfig, train_lookahead
    from scenarios.errors import InvalidInputError

    try:
        config = LookaheadConfig.from_dict(key_values(args.lookahead_option, "--lookahead-option"))
    except (InvalidInputError, TypeError) as exc:
        raise CliError("--lookahead-option", str(exc)) from None
    env = _make_env(args, parser)
    torch.set_num_threads(args.threads)
    policy = train_lookahead(env.scenario, env.instance, config, seed=args.seed, progress=not args.quiet)
    path = policy.save(args.out)
    s = policy.training_summary
    print(json.dumps({"checkpoint": str(path), "kind": policy.kind, "policy_version": policy.policy_version, **s}))
    return 0


def cmd_quickstart(args: argparse.Namespace, parser: CliParser) -> int:
    """The main job: train a capacity policy (J = 20, B = 5) on the planner prior, evaluate it against the
    planners, every baseline and the certified bound, report."""
    import torch

    from engine import DQNConfig, Engine
    from scenarios import make

    torch.set_num_threads(args.threads)
    env = make("capacity", n_arms=args.n_arms, budget=args.budget, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"training capacity J={args.n_arms} B={args.budget} seed={args.seed} ({args.episodes} episodes)")
    engine = Engine.train(env, DQNConfig(episodes=args.episodes), seed=args.seed, progress=not args.quiet)
    engine.save(out / "policy")
    result = run_evaluation(engine, args.eval_episodes, args.seed, None, not args.quiet)
    write_report_files([result], str(out / "evaluation.json"), str(out / "evaluation.md"), str(out / "evaluation.png"))
    best = result.get("best_planner")
    for name, diff in result.get("paired_vs_best_planner", {}).items():
        print(
            f"{name} - {best} (best planner): {diff['mean']:+.2f} "
            f"(95% CI {diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f})"
        )
    if result.get("upper_bound"):
        method = result.get("upper_bound_method", "occupancy LP")
        print(f"certified upper bound ({method}): {result['upper_bound']:.2f}")
    print(f"wrote {out}/policy, evaluation.json, evaluation.md, evaluation.png")
    return 0


def cmd_bench(args: argparse.Namespace, parser: CliParser) -> int:
    bench_dir = Path(args.dir)
    scripts = sorted(p.stem.removeprefix("bench_") for p in bench_dir.glob("bench_*.py"))
    if not args.name:
        print("\n".join(scripts))
        return 0
    if args.name not in scripts:
        raise CliError("NAME", f"unknown benchmark {args.name!r}; choices: {', '.join(scripts)}")
    sys.argv = [f"bench_{args.name}.py", *args.rest]
    runpy.run_path(str(bench_dir / f"bench_{args.name}.py"), run_name="__main__")
    return 0


COMMANDS = {
    "scenarios": cmd_scenarios,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "decide": cmd_decide,
    "quickstart": cmd_quickstart,
    "bench": cmd_bench,
}


def _library_error(exc: ValueError, args: argparse.Namespace, parser: CliParser) -> str | None:
    """The one-line message of the library's input errors, naming the argument when the field is one."""
    from scenarios.errors import InfeasibleActionError, InvalidInputError

    if isinstance(exc, InfeasibleActionError):
        return str(exc)
    if isinstance(exc, InvalidInputError):
        root = exc.field.replace("[", ".").split(".")[0]
        name = parser.option_name(root)
        options = [item.partition("=")[0] for item in getattr(args, "scenario_option", None) or []]
        if root in options:  # a generator parameter given with --scenario-option
            return f"argument --scenario-option: {exc}"
        if name is None:
            return str(exc)
        inner = exc.field[len(root) :].lstrip(".")  # e.g. instance.costs[2]: the part of the argument's value
        return f"argument {name}: {inner + ': ' if inner else ''}{exc.reason}"
    return None


def _fail(parser: argparse.ArgumentParser, message: str) -> int:
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2: bad input, reported as one line on stderr)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, or a bad command line already reported by CliParser.error
        return int(exc.code or 0)
    if args.command == "serve":
        from api.cli_serve import cmd_serve

        return cmd_serve(extra)
    sub = subparser(parser, args.command)
    if extra:
        return _fail(sub, f"unrecognized arguments: {' '.join(extra)}")
    try:
        return COMMANDS[args.command](args, sub)
    except CliError as exc:
        return _fail(sub, str(exc))
    except ValueError as exc:
        message = _library_error(exc, args, sub)
        if message is None:
            raise
        return _fail(sub, message)


if __name__ == "__main__":
    sys.exit(main())
