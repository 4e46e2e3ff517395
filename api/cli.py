"""Command line: ``redwood scenarios | train | evaluate | decide | quickstart | bench``."""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

import numpy as np

from scenarios.errors import InfeasibleActionError, InvalidInputError


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--hidden: expected comma-separated integers, got {text!r}") from exc
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError("--hidden: widths must be positive")
    return widths


def _make_env(args: argparse.Namespace):
    from scenarios import make

    if args.instance:
        return make(args.scenario, instance=Path(args.instance).read_text())
    return make(args.scenario, n_arms=args.n_arms, budget=args.budget, seed=args.seed)


def cmd_scenarios(args: argparse.Namespace) -> int:
    from scenarios import instance_class, list_scenarios

    for name in list_scenarios():
        doc = (instance_class(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:20s} {doc}")
    return 0


def _key_values(items: list[str] | None, field: str, allowed: set[str] | None = None,
                key_kind: str = "a name") -> dict:
    """``KEY=VALUE`` pairs, VALUE parsed as JSON when it can be; ``allowed`` (described as ``key_kind``)
    limits the keys."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or (allowed is not None and key not in allowed):
            raise InvalidInputError(field, f"expected KEY=VALUE with {key_kind} as KEY, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _dqn_options(items: list[str] | None) -> dict:
    """``--dqn-option`` pairs overriding DQNConfig fields."""
    from engine import DQNConfig

    return _key_values(items, "dqn_option", set(DQNConfig.__dataclass_fields__), "a DQNConfig field")


def _executor(args: argparse.Namespace):
    from engine.executors import make_executor

    return make_executor(args.executor, address=args.ray_address, num_cpus=args.num_cpus, progress=not args.quiet)


def _train_seeds(args: argparse.Namespace, config) -> int:
    """``train --seeds``: one checkpoint per seed under ``--out`` (seed_<s>/), fanned out on the executor."""
    from engine.sweep import train_task

    if any(s < 0 for s in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        raise InvalidInputError("seeds", "seeds must be distinct and non-negative")
    base = {"scenario": args.scenario, "config": config.to_dict(), "n_arms": args.n_arms, "budget": args.budget,
            "instance": Path(args.instance).read_text() if args.instance else None}
    with _executor(args) as executor:
        results = executor.map(train_task, [{**base, "seed": s} for s in args.seeds], desc="train")
    for res in results:
        path = Path(args.out) / f"seed_{res['seed']}"
        path.mkdir(parents=True, exist_ok=True)
        for name, data in res.pop("files").items():
            (path / name).write_bytes(data)
        print(json.dumps({"checkpoint": str(path), **{k: v for k, v in res.items() if k != "seed"}}))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from engine import DQNConfig, Engine

    torch.set_num_threads(args.threads)
    config = DQNConfig.from_dict({**DQNConfig().to_dict(), **_dqn_options(args.dqn_option),
                                  "hidden": args.hidden, "episodes": args.episodes})
    if args.seeds:
        return _train_seeds(args, config)
    env = _make_env(args)
    engine = Engine.train(env, config, seed=args.seed, progress=not args.quiet)
    path = engine.save(args.out)
    s = engine.training_summary
    print(json.dumps({"checkpoint": str(path), "policy_version": engine.policy_version,
                      "seconds": round(s["seconds"], 1), "act_decisions": s["act_decisions"],
                      "last10_mean_return": float(np.mean(s["episode_returns"][-10:]))}))
    return 0


def run_evaluation(engine, episodes: int, seed: int, methods: list[str] | None, progress: bool,
                   time_limit: float | None = None) -> dict:
    """Evaluate the engine against every baseline (see :func:`engine.evaluation.evaluate_engine`)."""
    from engine.evaluation import evaluate_engine

    return evaluate_engine(engine, episodes, seed, methods, progress, time_limit)


def _write_outputs(results: list[dict], json_path: str | None, markdown: str | None, plot: str | None) -> None:
    from engine.report import markdown_table, plot_evaluation

    if json_path:
        Path(json_path).write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    table = markdown_table(results)
    if markdown:
        Path(markdown).write_text(table)
    if plot:
        plot_evaluation(results, plot)
    print(table)


def _evaluate_sweep(args: argparse.Namespace) -> int:
    """``evaluate --domains``: train and evaluate every (domain, seed) on the executor (engine/sweep.py)."""
    from engine.sweep import SweepConfig, run_sweep, write_outputs

    if args.checkpoints:
        raise InvalidInputError("checkpoints", "give either checkpoints or --domains, not both")
    config = SweepConfig(
        domains=tuple(args.domains), seeds=tuple(args.seeds if args.seeds is not None else [args.seed]),
        n_arms=args.n_arms, budget=args.budget, horizon=args.horizon, train_episodes=args.train_episodes,
        eval_episodes=args.episodes, methods=tuple(args.methods) if args.methods else None,
        dqn={**_dqn_options(args.dqn_option), "hidden": list(args.hidden)}, time_limit=args.time_limit,
        exact_max_arms=args.exact_max_arms, scenario=_key_values(args.scenario_option, "scenario_option"),
    )
    with _executor(args) as executor:
        sweep = run_sweep(config, executor, progress=not args.quiet)
    print(write_outputs(sweep, args.json, args.markdown, args.plot))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine import Engine

    if args.domains:
        return _evaluate_sweep(args)
    if not args.checkpoints:
        raise InvalidInputError("checkpoints", "give checkpoint directories, or --domains for a sweep")
    if args.executor != "serial":
        raise InvalidInputError("executor", "checkpoint evaluation runs serially; use --domains for a sweep")
    results = []
    for checkpoint in args.checkpoints:
        engine = Engine.load(checkpoint)
        results.append(run_evaluation(engine, args.episodes, args.seed, args.methods, not args.quiet,
                                      args.time_limit))
    _write_outputs(results, args.json, args.markdown, args.plot)
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from engine import Engine

    engine = Engine.load(args.checkpoint)
    state = json.loads(args.state) if args.state.strip().startswith("[") else [
        int(v) for v in args.state.split(",")]
    decision = engine.decide(state, selector=args.selector, time_limit=args.time_limit)
    print(json.dumps(decision.to_dict()))
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    """The main job: train a capacity policy (J = 20, B = 5), evaluate it against every baseline, report."""
    import torch

    from engine import DQNConfig, Engine
    from scenarios import make

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = make("capacity", n_arms=args.n_arms, budget=args.budget, seed=args.seed)
    print(f"training capacity J={args.n_arms} B={args.budget} seed={args.seed} ({args.episodes} episodes)")
    engine = Engine.train(env, DQNConfig(episodes=args.episodes), seed=args.seed, progress=not args.quiet)
    engine.save(out / "policy")
    result = run_evaluation(engine, args.eval_episodes, args.seed, None, not args.quiet)
    _write_outputs([result], str(out / "evaluation.json"), str(out / "evaluation.md"), str(out / "evaluation.png"))
    for name, diff in result["paired_vs_reference"].items():
        print(f"dqn_mip - {name}: {diff['mean']:+.2f} (95% CI {diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f})")
    print(f"wrote {out}/policy, evaluation.json, evaluation.md, evaluation.png")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the REST service (or manage its API keys)."""
    from api.service.server import serve

    return serve(args)


def cmd_bench(args: argparse.Namespace) -> int:
    bench_dir = Path(args.dir)
    scripts = sorted(p.stem.removeprefix("bench_") for p in bench_dir.glob("bench_*.py"))
    if not args.name:
        print("\n".join(scripts))
        return 0
    if args.name not in scripts:
        raise InvalidInputError("name", f"unknown benchmark {args.name!r}; known: {scripts}")
    sys.argv = [f"bench_{args.name}.py", *args.rest]
    runpy.run_path(str(bench_dir / f"bench_{args.name}.py"), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redwood", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("scenarios", help="list scenarios").set_defaults(func=cmd_scenarios)

    def instance_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("scenario")
        q.add_argument("--instance", help="instance JSON file (instead of the seeded generator)")
        q.add_argument("--n-arms", type=int, default=20)
        q.add_argument("--budget", type=int, default=5)
        q.add_argument("--seed", type=int, default=0)

    def executor_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--executor", choices=["serial", "ray"], default="serial")
        q.add_argument("--ray-address", help="Ray cluster address ('auto', 'ray://host:10001'); default: local")
        q.add_argument("--num-cpus", type=int, help="CPUs of the local Ray cluster (default: all)")

    q = sub.add_parser("train", help="train a policy and write a checkpoint directory")
    instance_args(q)
    q.add_argument("--episodes", type=int, default=100)
    q.add_argument("--hidden", type=_parse_hidden, default=(16, 32))
    q.add_argument("--out", required=True, help="checkpoint directory (with --seeds: parent of seed_<s>/)")
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--quiet", action="store_true")
    q.add_argument("--seeds", type=int, nargs="+", help="train one checkpoint per seed on the executor")
    q.add_argument("--dqn-option", nargs="*", metavar="KEY=VALUE", help="override DQNConfig fields")
    executor_args(q)
    q.set_defaults(func=cmd_train)

    q = sub.add_parser("evaluate", help="evaluate checkpoints against the baselines (common random numbers), "
                                         "or with --domains train and evaluate a domains x seeds sweep")
    q.add_argument("checkpoints", nargs="*")
    q.add_argument("--episodes", type=int, default=50, help="evaluation episodes per method")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--methods", nargs="*")
    q.add_argument("--time-limit", type=float, default=None)
    q.add_argument("--json")
    q.add_argument("--markdown")
    q.add_argument("--plot")
    q.add_argument("--quiet", action="store_true")
    q.add_argument("--domains", nargs="+", help="sweep these domains (training included) instead of checkpoints")
    q.add_argument("--seeds", type=int, nargs="+", help="sweep seeds (instance and training; default --seed)")
    q.add_argument("--n-arms", type=int, default=20)
    q.add_argument("--budget", type=int, default=5)
    q.add_argument("--horizon", type=int, default=20)
    q.add_argument("--train-episodes", type=int, default=100)
    q.add_argument("--hidden", type=_parse_hidden, default=(16, 32))
    q.add_argument("--dqn-option", nargs="*", metavar="KEY=VALUE", help="override DQNConfig fields")
    q.add_argument("--scenario-option", nargs="*", metavar="KEY=VALUE",
                   help="more instance-generator parameters for every swept domain (e.g. n_actions=6)")
    q.add_argument("--exact-max-arms", type=int, default=6, help="exact DP optimum when n_arms <= this")
    executor_args(q)
    q.set_defaults(func=cmd_evaluate)

    q = sub.add_parser("decide", help="decide one state with a checkpoint")
    q.add_argument("checkpoint")
    q.add_argument("--state", required=True, help="'s_1,...,s_J,time_to_go' or a JSON list")
    q.add_argument("--selector", default="mip")
    q.add_argument("--time-limit", type=float, default=None)
    q.set_defaults(func=cmd_decide)

    q = sub.add_parser("quickstart", help="main job: train + evaluate a capacity policy, write a report")
    q.add_argument("--n-arms", type=int, default=20)
    q.add_argument("--budget", type=int, default=5)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--episodes", type=int, default=100)
    q.add_argument("--eval-episodes", type=int, default=50)
    q.add_argument("--out", default="runs/quickstart")
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=cmd_quickstart)

    q = sub.add_parser("serve", help="run the REST service on 127.0.0.1 (or manage API keys)")
    from api.service.server import add_arguments as serve_arguments

    serve_arguments(q)
    q.set_defaults(func=cmd_serve)

    q = sub.add_parser("bench", help="run a benchmark from bench/ (no name: list them)")
    q.add_argument("name", nargs="?")
    q.add_argument("rest", nargs=argparse.REMAINDER)
    q.add_argument("--dir", default="bench")
    q.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InvalidInputError, InfeasibleActionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
