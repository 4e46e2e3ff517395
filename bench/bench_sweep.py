"""Sweep benchmark: the same domains x seeds evaluation run serially and on a local Ray cluster in one run.

Checks that both give identical numbers (every field but wall-clock times) and prints the speed-up
(target >= 1.7x on 2 cores), with and without the cluster's start-up. ``--quick`` uses small instances
and few episodes (minutes); the default is the full J = 20 configuration (hours on 2 cores).
``--time-tasks`` instead times one task per domain serially (e.g. J = 20, 100 training episodes,
50 evaluation episodes), which is what schedules the big sweep.

    python bench/bench_sweep.py --quick
    python bench/bench_sweep.py --time-tasks --n-arms 20 --train-episodes 100 --episodes 50
"""

from __future__ import annotations

import argparse
import json
import time

from engine.experiments.executors import RayExecutor, SerialExecutor
from engine.experiments.sweep import BENCHMARK_DOMAINS, SweepConfig, comparable, run_sweep, run_task

QUICK = {
    "n_arms": 8,
    "budget": 3,
    "horizon": 10,
    "train_episodes": 10,
    "eval_episodes": 10,
    "dqn": {"warm_start_samples": 1024, "warm_start_epochs": 30},
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small instances and few episodes (minutes)")
    p.add_argument("--time-tasks", action="store_true", help="time one task per domain serially, no Ray")
    p.add_argument("--domains", nargs="+", default=list(BENCHMARK_DOMAINS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n-arms", type=int)
    p.add_argument("--budget", type=int)
    p.add_argument("--horizon", type=int)
    p.add_argument("--train-episodes", type=int)
    p.add_argument("--episodes", type=int, help="evaluation episodes")
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--json", help="write the measurements (and both sweeps' summaries) here")
    return p.parse_args()


def build_config(args: argparse.Namespace) -> SweepConfig:
    fields = dict(QUICK) if args.quick else {}
    for name, value in (
        ("n_arms", args.n_arms),
        ("budget", args.budget),
        ("horizon", args.horizon),
        ("train_episodes", args.train_episodes),
        ("eval_episodes", args.episodes),
    ):
        if value is not None:
            fields[name] = value
    return SweepConfig(domains=tuple(args.domains), seeds=tuple(args.seeds), **fields)


def time_tasks(config: SweepConfig) -> dict:
    """One task per domain (the first seed), serially in this process; per-phase wall times."""
    out = {}
    for task in config.tasks()[:: len(config.seeds)]:
        start = time.perf_counter()
        result = run_task(task)
        wall = time.perf_counter() - start
        dqn = result["methods"].get("dqn_mip", {})
        out[task["domain"]] = {
            "wall_seconds": wall,
            **result["timings"],
            "pct_of_upper_bound": {name: m.get("pct_of_upper_bound") for name, m in result["methods"].items()},
        }
        print(
            f"{task['domain']:20s} wall {wall:7.1f} s  "
            + "  ".join(
                f"{k.removesuffix('_seconds')} {v:6.1f}" for k, v in result["timings"].items() if k != "total_seconds"
            )
            + f"  dqn_mip {dqn.get('pct_of_upper_bound', float('nan')):.1f}% of bound",
            flush=True,
        )
    return out


def compare(config: SweepConfig, num_cpus: int) -> dict:
    start = time.perf_counter()
    serial = run_sweep(config, SerialExecutor(progress=True))
    serial_s = time.perf_counter() - start
    print(f"serial: {serial_s:.1f} s", flush=True)
    start = time.perf_counter()
    with RayExecutor(num_cpus=num_cpus, progress=True) as executor:
        started = time.perf_counter()
        ray = run_sweep(config, executor)
        ray_s = time.perf_counter() - started
    ray_total = time.perf_counter() - start
    identical = comparable(serial["tasks"]) == comparable(ray["tasks"]) and comparable(serial["summary"]) == comparable(
        ray["summary"]
    )
    serial_cpu = sum(t["timings"]["cpu_seconds"] for t in serial["tasks"])
    ray_cpu = sum(t["timings"]["cpu_seconds"] for t in ray["tasks"])
    print(f"ray ({num_cpus} CPUs): {ray_s:.1f} s sweep, {ray_total:.1f} s including cluster start and shutdown")
    # On a shared machine the wall-clock ratio depends on the other load: the cores each run obtained
    # (task CPU seconds / wall seconds) show it; ideal on 2 idle cores is ~1 (serial) vs ~2 (ray).
    print(
        f"task CPU: serial {serial_cpu:.1f} s ({serial_cpu / serial_s:.2f} cores obtained), "
        f"ray {ray_cpu:.1f} s ({ray_cpu / ray_s:.2f} cores obtained)"
    )
    print(f"identical numbers: {identical}")
    print(f"speed-up: {serial_s / ray_s:.2f}x (sweep), {serial_s / ray_total:.2f}x (including cluster start)")
    return {
        "serial_seconds": serial_s,
        "ray_seconds": ray_s,
        "ray_seconds_with_start": ray_total,
        "speedup": serial_s / ray_s,
        "speedup_with_start": serial_s / ray_total,
        "identical": identical,
        "serial_task_cpu_seconds": serial_cpu,
        "ray_task_cpu_seconds": ray_cpu,
        "n_tasks": len(serial["tasks"]),
        "summary": serial["summary"],
    }


def main() -> None:
    args = parse()
    config = build_config(args)
    print(f"config: {json.dumps({k: v for k, v in config.to_dict().items() if k != 'methods'})}", flush=True)
    result = time_tasks(config) if args.time_tasks else compare(config, args.num_cpus)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": config.to_dict(), **result}, f, indent=2)
    if not args.time_tasks and not result["identical"]:
        raise SystemExit("serial and Ray results differ")


if __name__ == "__main__":
    main()
