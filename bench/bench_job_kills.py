"""SIGKILL every ``redwood serve`` process (``--workers 2``, and with them the jobs' child processes) while tiny
training jobs run, restart, repeat; then wait for every job and print the counts: none may be lost or stuck.

    python bench/bench_job_kills.py --kills 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.service.harness import Server
from api.service.job_harness import audit, kill_during_job, submit, wait_all

ADMIN = "rw_bench_admin_key"
H = {"X-API-Key": ADMIN}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--workers", type=int, default=2, help="server processes")
    p.add_argument("--job-workers", type=int, default=2, help="jobs running at once")
    p.add_argument(
        "--max-attempts",
        type=int,
        default=30,
        help="a job killed this many times fails (the oldest queued jobs run first, so take most kills)",
    )
    p.add_argument("--lease", type=float, default=6.0)
    p.add_argument("--max-delay", type=float, default=3.0, help="kill after 0..this seconds of running")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default: a SQLite file in a temporary directory)")
    args = p.parse_args()
    os.environ.update(
        {
            "REDWOOD_JOB_WORKERS": str(args.job_workers),
            "REDWOOD_JOB_MAX_ATTEMPTS": str(args.max_attempts),
            "REDWOOD_JOB_LEASE_SECONDS": str(args.lease),
        }
    )
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pol").mkdir()
        server = Server(
            args.db or f"sqlite:///{tmp}/jobs.db", Path(tmp) / "pol", ADMIN, extra=["--workers", str(args.workers)]
        ).start()
        start = time.perf_counter()
        try:
            hits = 0
            for i in range(args.kills):
                hits += kill_during_job(server, H, rng, args.max_delay)
                print(f"kill {i + 1}/{args.kills} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
            submit(server.base, H)
            rows = wait_all(server.base, H, timeout=600)
            counts = audit(server.base, H, args.kills + 1, rows)
        finally:
            server.stop()
    counts.update(
        {
            "kills": args.kills,
            "kills_during_a_running_job": hits,
            "server_processes": args.workers,
            "seconds": round(time.perf_counter() - start, 1),
        }
    )
    print(json.dumps(counts, indent=1))
    return 0 if counts["lost"] == 0 and counts["stuck"] == 0 and counts["failed_without_reason"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
