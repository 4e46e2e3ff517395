"""Command line: ``redwood scenarios | train | evaluate | decide | quickstart | serve | bench``.

Parsing lives in :mod:`api.cli_args` and imports nothing heavy; each command imports what it needs. A bad
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


# ------------------------------------------------------------------------------------------ shared checks
def _exclusive(args: argparse.Namespace, parser: CliParser, first: str, second: str) -> None:
    """Refuse ``first`` and ``second`` given together (one of them would be silently ignored)."""
    if first in given(args) and second in given(args):
        raise CliError(parser.option_name(first), f"not allowed with argument {parser.option_name(second)}")


def _only_with(
    args: argparse.Namespace, parser: CliParser, dests: set[str] | list[str], condition: bool, requirement: str
) -> None:
    """Refuse any of ``dests`` given when ``condition`` is false (it would be ignored)."""
    for dest in sorted(set(dests) & given(args)):
        if not condition:
            raise CliError(parser.option_name(dest), f"only meaningful with {requirement}")


def _check_executor(args: argparse.Namespace, parser: CliParser) -> None:
    _only_with(args, parser, ["ray_address", "num_cpus"], args.executor == "ray", "--executor ray")


def _key_values(
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


def _value_fits(value: object, default: object) -> bool:
    """Whether ``value`` has the type of a config field whose default is ``default``."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (tuple, list)):
        return isinstance(value, list)
    return isinstance(value, type(default))


def _dqn_options(items: list[str] | None, episodes_flag: str) -> dict:
    """``--dqn-option`` pairs overriding DQNConfig fields, type-checked against the fields' defaults."""
    from engine import DQNConfig

    defaults = DQNConfig().to_dict()
    out = _key_values(items, "--dqn-option", set(defaults), "a DQNConfig field")
    for key, value in out.items():
        if key in ("hidden", "episodes"):
            raise CliError("--dqn-option", f"{key} is set by {'--hidden' if key == 'hidden' else episodes_flag}")
        if not _value_fits(value, defaults[key]):
            raise CliError(
                "--dqn-option", f"{key}={json.dumps(value)}: expected a value like {json.dumps(defaults[key])}"
            )
    return out


def _ac_options(items: list[str] | None) -> dict:
    """``--ac-option`` pairs overriding ActorCriticConfig fields, type-checked against the fields' defaults
    (a field whose default is None takes a number or null)."""
    from dataclasses import asdict

    from engine import ActorCriticConfig

    defaults = asdict(ActorCriticConfig())
    out = _key_values(items, "--ac-option", set(defaults), "an ActorCriticConfig field")
    for key, value in out.items():
        default = defaults[key]
        fits = (value is None or isinstance(value, (int, float))) if default is None else _value_fits(value, default)
        if isinstance(default, dict):
            fits = isinstance(value, dict)
        if not fits:
            raise CliError("--ac-option", f"{key}={json.dumps(value)}: expected a value like {json.dumps(default)}")
    return out


def _load_engine(path: str, argument: str = "CHECKPOINT"):
    from engine import Engine

    try:
        return Engine.load(path)
    except FileNotFoundError as exc:
        raise CliError(argument, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise CliError(argument, f"{path}: config.json is not valid JSON ({exc.msg})") from None


def _executor(args: argparse.Namespace):
    from engine.experiments.executors import make_executor

    return make_executor(args.executor, address=args.ray_address, num_cpus=args.num_cpus, progress=not args.quiet)


# ---------------------------------------------------------------------------------------------- commands
def cmd_scenarios(args: argparse.Namespace, parser: CliParser) -> int:
    from api.cli_args import scenario_registry

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
    options = _key_values(
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
    with _executor(args) as executor:
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
        _exclusive(args, parser, generator_arg, "instance")
    for single_arg in ("seed", "threads", "scenario_option"):
        _exclusive(args, parser, single_arg, "seeds")
    _only_with(args, parser, ["executor", "ray_address", "num_cpus"], bool(args.seeds), "--seeds")
    _check_executor(args, parser)
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise CliError("--seeds", "seeds must be distinct")
    dqn_options = _dqn_options(args.dqn_option, "--episodes")
    ac_options = _ac_options(args.ac_option)
    if args.planner:
        return _write_planner(args, parser)

    import numpy as np
    import torch

    from engine import DQNConfig, trainers
    from engine.engine import train_dqn

    env = _make_env(args, parser)
    if trainers.family(env) == "box":
        return _train_box(args, parser, env, ac_options)
    _only_with(args, parser, ["ac_option"], False, "an integer-box scenario (trained by the actor-critic)")
    config = DQNConfig.from_dict(
        {**DQNConfig().to_dict(), **dqn_options, "hidden": args.hidden, "episodes": args.episodes}
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


def _train_box(args: argparse.Namespace, parser: CliParser, env, ac_options: dict) -> int:
    """``train`` on an integer-box scenario: the Q-actor-critic with ``--ac-option`` settings (its length is
    ``total_steps`` transitions, not episodes)."""
    import time

    import numpy as np
    import torch

    from engine import ActorCriticAgent, ActorCriticConfig

    requirement = "allocation scenarios (trained by the DQN; integer-box scenarios take --ac-option)"
    _only_with(args, parser, ["episodes", "hidden", "dqn_option", "seeds"], False, requirement)
    config = ActorCriticConfig.from_dict(ac_options)
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


def run_evaluation(
    engine, episodes: int, seed: int, methods: list[str] | None, progress: bool, time_limit: float | None = None
) -> dict:
    """Evaluate the engine against every baseline (see :func:`engine.analysis.evaluation.evaluate_engine`)."""
    from engine.analysis.evaluation import evaluate_engine

    return evaluate_engine(engine, episodes, seed, methods, progress, time_limit)


def _write_outputs(results: list[dict], json_path: str | None, markdown: str | None, plot: str | None) -> None:
    from engine.experiments.report import markdown_table, plot_evaluation

    if json_path:
        Path(json_path).write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    table = markdown_table(results)
    if markdown:
        Path(markdown).write_text(table)
    if plot:
        plot_evaluation(results, plot)
    print(table)


def _evaluate_sweep(args: argparse.Namespace, parser: CliParser) -> int:
    """``evaluate --domains``: train and evaluate every (domain, seed) on the executor (engine/experiments/sweep.py)."""
    _exclusive(args, parser, "checkpoints", "domains")
    _exclusive(args, parser, "seed", "seeds")
    _check_executor(args, parser)
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise CliError("--seeds", "seeds must be distinct")
    if len(set(args.domains)) != len(args.domains):
        raise CliError("--domains", "domains must be distinct")
    dqn = {**_dqn_options(args.dqn_option, "--train-episodes"), "hidden": list(args.hidden)}
    scenario = _key_values(args.scenario_option, "--scenario-option")

    from engine.experiments.sweep import SweepConfig, run_sweep, write_outputs

    config = SweepConfig(
        domains=tuple(args.domains),
        seeds=tuple(args.seeds if args.seeds is not None else [args.seed]),
        n_arms=args.n_arms,
        budget=args.budget,
        horizon=args.horizon,
        train_episodes=args.train_episodes,
        eval_episodes=args.episodes,
        methods=tuple(args.methods) if args.methods else None,
        dqn=dqn,
        time_limit=args.time_limit,
        exact_max_arms=args.exact_max_arms,
        scenario=scenario,
    )
    with _executor(args) as executor:
        sweep = run_sweep(config, executor, progress=not args.quiet)
    print(write_outputs(sweep, args.json, args.markdown, args.plot))
    return 0


def cmd_evaluate(args: argparse.Namespace, parser: CliParser) -> int:
    if "time_limit" in given(args) and args.methods and "dqn_mip" not in args.methods:
        raise CliError("--time-limit", "only meaningful when --methods includes dqn_mip (the MILP decisions)")
    if args.domains:
        return _evaluate_sweep(args, parser)
    if not args.checkpoints:
        raise CliError(None, "expected checkpoints (directories written by 'redwood train'), or --domains for a sweep")
    _only_with(args, parser, parser.only_with_domains, False, "--domains")
    results = []
    for checkpoint in args.checkpoints:
        engine = _load_engine(checkpoint)
        results.append(run_evaluation(engine, args.episodes, args.seed, args.methods, not args.quiet, args.time_limit))
    _write_outputs(results, args.json, args.markdown, args.plot)
    return 0


def cmd_decide(args: argparse.Namespace, parser: CliParser) -> int:
    if args.time_limit is not None:  # a selector honours a time limit when it has that setting
        import inspect

        from engine.sequoia.selectors import load_plugins

        selectors = load_plugins()
        limited = [name for name, cls in selectors.items() if "time_limit" in inspect.signature(cls).parameters]
        if args.selector in selectors and args.selector not in limited:
            raise CliError(
                "--time-limit",
                f"selector {args.selector!r} takes no time limit; selectors with one: {', '.join(limited)}",
            )
    engine = _load_engine(args.checkpoint)
    decision = engine.decide(args.state, selector=args.selector, time_limit=args.time_limit)
    print(json.dumps(decision.to_dict()))
    for line in assignment_lines(decision.assignment):  # for the operator; standard output stays one JSON line
        print(line, file=sys.stderr)
    return 0


def assignment_lines(assignment: dict) -> list[str]:
    """A decision's certificate as lines an operator can act on (worker -> arms, slots, the route)."""
    lines: list[str] = []
    for key, part in assignment.items():
        if key == "workers":
            lines += [f"worker {w}: arms {', '.join(map(str, arms))}" for w, arms in part.items()]
        elif key == "slots":
            lines += [f"worker {s['worker']}, slot {s['slot']}: arm {s['arm']}" for s in part]
        elif key == "route":
            lines.append("route: " + " -> ".join(map(str, part)))
        elif key == "interventions":
            lines += [f"intervention {i}: reaches arms {', '.join(map(str, arms))}" for i, arms in part.items()]
        else:  # a user block's part, under its label
            lines.append(f"{key}: {json.dumps(part)}")
    return lines


def _write_planner(args: argparse.Namespace, parser: CliParser) -> int:
    """``train --planner NAME``: a planner policy (no training) saved like a checkpoint."""
    for training_arg in ("seeds", "episodes", "hidden", "dqn_option", "ac_option", "threads"):
        _exclusive(args, parser, training_arg, "planner")
    from engine import Engine

    policy = Engine.plan(_make_env(args, parser), args.planner)
    path = policy.save(args.out)
    print(json.dumps({"checkpoint": str(path), "planner": args.planner, "policy_version": policy.policy_version}))
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
    _write_outputs([result], str(out / "evaluation.json"), str(out / "evaluation.md"), str(out / "evaluation.png"))
    best = result.get("best_planner")
    for name, diff in result.get("paired_vs_best_planner", {}).items():
        print(
            f"{name} - {best} (best planner): {diff['mean']:+.2f} "
            f"(95% CI {diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f})"
        )
    if result.get("upper_bound"):
        print(f"certified upper bound (occupancy LP): {result['upper_bound']:.2f}")
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
