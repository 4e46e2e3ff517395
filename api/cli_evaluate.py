"""The ``redwood evaluate`` and ``redwood decide`` commands: evaluation of checkpoints or a domains x seeds
sweep with its report files, and one decision with its assignment."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from api.cli_args import CliError, CliParser, given
from api.cli_options import (
    check_executor,
    dqn_options,
    exclusive,
    executor_from_args,
    key_values,
    load_policy,
    only_with,
)


def run_evaluation(
    engine, episodes: int, seed: int, methods: list[str] | None, progress: bool, time_limit: float | None = None
) -> dict:
    """Evaluate the engine against every baseline (see :func:`engine.analysis.evaluation.evaluate_engine`)."""
    from engine.analysis.evaluation import evaluate_engine

    return evaluate_engine(engine, episodes, seed, methods, progress, time_limit)


def write_report_files(results: list[dict], json_path: str | None, markdown: str | None, plot: str | None) -> None:
    from engine.experiments.report import markdown_table, plot_evaluation

    if json_path:
        Path(json_path).write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    table = markdown_table(results)
    if markdown:
        Path(markdown).write_text(table)
    if plot:
        plot_evaluation(results, plot)
    print(table)


def evaluate_sweep(args: argparse.Namespace, parser: CliParser) -> int:
    """``evaluate --domains``: train and evaluate every (domain, seed) on the executor (engine/experiments/sweep.py)."""
    exclusive(args, parser, "checkpoints", "domains")
    exclusive(args, parser, "seed", "seeds")
    check_executor(args, parser)
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise CliError("--seeds", "seeds must be distinct")
    if len(set(args.domains)) != len(args.domains):
        raise CliError("--domains", "domains must be distinct")
    dqn = {**dqn_options(args.dqn_option, "--train-episodes"), "hidden": list(args.hidden)}
    scenario = key_values(args.scenario_option, "--scenario-option")

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
    with executor_from_args(args) as executor:
        sweep = run_sweep(config, executor, progress=not args.quiet)
    print(write_outputs(sweep, args.json, args.markdown, args.plot))
    return 0


def cmd_evaluate(args: argparse.Namespace, parser: CliParser) -> int:
    if "time_limit" in given(args) and args.methods and "dqn_mip" not in args.methods:
        raise CliError("--time-limit", "only meaningful when --methods includes dqn_mip (the MILP decisions)")
    if args.domains:
        return evaluate_sweep(args, parser)
    if not args.checkpoints:
        raise CliError(None, "expected checkpoints (directories written by 'redwood train'), or --domains for a sweep")
    only_with(args, parser, parser.only_with_domains, False, "--domains")
    results = []
    for checkpoint in args.checkpoints:
        engine = load_policy(checkpoint)
        results.append(run_evaluation(engine, args.episodes, args.seed, args.methods, not args.quiet, args.time_limit))
    write_report_files(results, args.json, args.markdown, args.plot)
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
    engine = load_policy(args.checkpoint)
    selector = args.selector or engine.selectors[0]
    decision = engine.decide(args.state, selector=selector, time_limit=args.time_limit)
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
