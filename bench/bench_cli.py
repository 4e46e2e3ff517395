"""Start-up time of the command line: ``redwood --help`` and ``redwood scenarios`` against ``python -c pass``.

    python bench/bench_cli.py [--repeat 20]

Each command runs ``--repeat`` times as a fresh process; the commands take turns (round robin), so that load
from other work on the machine falls on all of them alike. Reported: median and p95 wall time, and the ratio
of the medians to the bare interpreter's measured in the same run. Target: median under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _redwood() -> list[str]:
    """The installed console script next to this interpreter (what users run), else ``python -m api.cli``."""
    script = Path(sys.executable).parent / "redwood"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "api.cli"]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=20, help="runs per command (default: 20)")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("argument --repeat: expected an integer >= 1")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "redwood --help": [*_redwood(), "--help"],
        "redwood scenarios": [*_redwood(), "scenarios"],
        "python -m api.cli scenarios": [sys.executable, "-m", "api.cli", "scenarios"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, argv in commands.items():
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["python -c pass"])
    print(f"{args.repeat} runs each, round robin; ratio = median / median of 'python -c pass'")
    print(f"| {'command':30s} | median (s) | p95 (s) | ratio |")
    print(f"|{'-' * 32}|-----------:|--------:|------:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name:30s} | {median:10.3f} | {_p95(values):7.3f} | {median / base:5.1f} |")
    slow = [name for name, values in times.items() if statistics.median(values) >= 1.0]
    print("target (median < 1 s): " + (f"MISSED by {', '.join(slow)}" if slow else "met"))


if __name__ == "__main__":
    main()
