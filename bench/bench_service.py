"""REST service throughput and latency against a real ``redwood serve`` on 127.0.0.1.

    python bench/bench_service.py                      # Whittle over 1,000 arms and MILP at J = 20; 1, 8, 32 clients
    python bench/bench_service.py --seconds 5 --deadline 0.05
    python bench/bench_service.py --workers 1                 # one server process (the default is 2)
    python bench/bench_service.py --kills 20           # SIGKILL / restart durability trials instead
    python bench/bench_service.py --db postgresql+psycopg://user@127.0.0.1:5432/db

Clients are threads with one keep-alive ``http.client`` connection each, in this process (they share the 2
cores with the server, so they are kept as cheap as possible: bodies are encoded before the clock starts).
Latency is wall time per request as the client sees it. A decision's deadline counts from its arrival at the
server; deadline-flagged MILP answers (the solver stopped at the deadline and returned its incumbent, or the
deadline had passed while the request waited for an engine and the greedy answer came back) are counted as
successful decisions and reported separately.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from api.service.harness import Server, kill_restart_trial

ADMIN = "rw_bench_admin"
H = {"X-API-Key": ADMIN}


def train_policy(policy_dir: Path, episodes: int) -> None:
    import torch

    from engine import DQNConfig, Engine
    from scenarios import make

    torch.set_num_threads(1)
    env = make("capacity", n_arms=20, budget=5, seed=0)
    cfg = DQNConfig(episodes=episodes, warm_start_samples=512, warm_start_epochs=5)
    Engine.train(env, cfg, seed=0, progress=False).save(policy_dir / "cap20")


def whittle_session(c: httpx.Client, n_arms: int, n_states: int, budget: int) -> str:
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(n_states), size=(n_arms, 2, n_states))
    P[:, 1] = 0.5 * P[:, 1] + 0.5 * np.eye(n_states)[np.minimum(np.arange(n_states) + 1, n_states - 1)]
    R = np.repeat(np.tile(np.arange(n_states, dtype=float), (n_arms, 1))[:, :, None], 2, axis=2)
    arms = {
        "transitions": np.round(P, 12).tolist(),
        "rewards": R.tolist(),
        "costs": [[0, 1]] * n_arms,
        "initial": [[1.0] + [0.0] * (n_states - 1)] * n_arms,
    }
    r = c.post(
        "/v1/sessions",
        json={"kind": "whittle", "arms": arms, "budget": budget, "allow_non_indexable": True},
        timeout=600,
    )
    r.raise_for_status()
    return r.json()["id"]


def cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid`` (the server and its workers)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (11), stime (12)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_load(base: str, path: str, make_body, clients: int, seconds: float, server_pgid: int) -> dict:
    """``clients`` threads posting bodies from ``make_body(rng)`` to ``path`` for ``seconds``; latencies and
    outcomes. Each client encodes 64 bodies before the clock starts and cycles through them, so the client
    threads, which share the 2 cores with the server, spend as little as possible per request."""
    lat: list[float] = []
    errors, flagged = [0], [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    headers = H | {"Content-Type": "application/json"}
    host, port = base.removeprefix("http://").split(":")

    def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.read()

    def worker(i: int) -> None:
        rng = random.Random(i)
        bodies = itertools.cycle([json.dumps(make_body(rng)).encode() for _ in range(64)])
        mine, err, flag = [], 0, 0
        conn = http.client.HTTPConnection(host, port, timeout=120)  # keep-alive; far cheaper per call than httpx
        post(conn, next(bodies))  # warm the connection (not timed)
        start_gate.wait()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            body = next(bodies)
            t0 = time.perf_counter()
            status, data = post(conn, body)
            mine.append(time.perf_counter() - t0)
            if status >= 300:
                err += 1
            elif b'"deadline_hit":true' in data:
                flag += 1
        conn.close()
        with lock:
            lat.extend(mine)
            errors[0] += err
            flagged[0] += flag

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0, server0, client0 = time.perf_counter(), cpu_seconds(server_pgid), sum(os.times()[:2])
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    server_cpu, client_cpu = cpu_seconds(server_pgid) - server0, sum(os.times()[:2]) - client0
    a = np.array(lat) * 1e3
    return {
        "clients": clients,
        "requests": len(lat),
        "per_s": len(lat) / wall,
        "p50": np.percentile(a, 50),
        "p95": np.percentile(a, 95),
        "p99": np.percentile(a, 99),
        "errors": errors[0],
        "flagged": flagged[0],
        "server_ms": 1e3 * server_cpu / max(len(lat), 1),
        "client_ms": 1e3 * client_cpu / max(len(lat), 1),
    }


def print_table(rows: list[tuple[str, dict]]) -> None:
    print(
        "| workload | clients | requests | decisions/s | p50 ms | p95 ms | p99 ms | errors | deadline-flagged "
        "| server CPU ms/req | client CPU ms/req |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['clients']} | {r['requests']} | {r['per_s']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
            f"{r['p99']:.1f} | {r['errors']} | {r['flagged']} | {r['server_ms']:.2f} | {r['client_ms']:.2f} |"
        )


def bench(args: argparse.Namespace, tmp: Path) -> None:
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    t0 = time.perf_counter()
    train_policy(policy_dir, args.episodes if "milp" in args.workloads else 0)
    print(f"trained capacity J=20 policy ({args.episodes} episodes) in {time.perf_counter() - t0:.1f} s")
    db = args.db or f"sqlite:///{tmp / 'bench.db'}"
    server = Server(
        db, policy_dir, ADMIN, extra=["--engine-pool", str(args.engine_pool), "--workers", str(args.workers)]
    ).start()
    rows = []
    try:
        with httpx.Client(base_url=server.base, headers=H, timeout=600) as c:
            t0 = time.perf_counter()
            sid = whittle_session(c, args.arms, 4, args.arms // 20)
            print(f"Whittle session over {args.arms} arms created in {time.perf_counter() - t0:.1f} s")
            pid = c.post("/v1/policies", json={"path": "cap20"}).raise_for_status().json()["id"]

        pgid = server.proc.pid  # the server runs in a session (and process group) of its own

        def whittle(rng: random.Random) -> dict:
            return {"states": [rng.randrange(4) for _ in range(args.arms)]}

        def milp(deadline: float):
            return lambda rng: {
                "state": [rng.randrange(4) for _ in range(20)] + [rng.randrange(1, 21)],
                "selector": "mip",
                "deadline_seconds": deadline,
            }

        for clients in args.clients if "whittle" in args.workloads else []:
            rows.append(
                (
                    f"Whittle select, {args.arms} arms",
                    run_load(server.base, f"/v1/sessions/{sid}/select", whittle, clients, args.seconds, pgid),
                )
            )
        for deadline in args.deadline if "milp" in args.workloads else []:
            for clients in args.clients:
                rows.append(
                    (
                        f"MILP decision J=20 (deadline {deadline * 1e3:.0f} ms)",
                        run_load(
                            server.base, f"/v1/policies/{pid}/decisions", milp(deadline), clients, args.seconds, pgid
                        ),
                    )
                )
    finally:
        server.stop()
    print_table(rows)
    print(
        f"load average after measuring: {' '.join(Path('/proc/loadavg').read_text().split()[:3])} "
        f"on {os.cpu_count()} cores"
    )


def kills(args: argparse.Namespace, tmp: Path) -> None:
    db = args.db or f"sqlite:///{tmp / 'kills.db'}"
    server = Server(db, tmp, ADMIN, extra=["--workers", str(args.workers)]).start()
    rng = random.Random(1)
    total_acked = total_lost = 0
    try:
        with httpx.Client(base_url=server.base, headers=H, timeout=60) as c:
            sids = [
                c.post(
                    "/v1/sessions",
                    json={"kind": kind, "n_arms": 20, "constraint": {"type": "top_k", "k": 4}, "seed": i},
                )
                .raise_for_status()
                .json()["id"]
                for i, kind in enumerate(["cucb", "thompson", "cucb"])
            ]
        for k in range(args.kills):
            acked, lost, states = kill_restart_trial(server, H, sids, args.kill_after, rng)
            total_acked, total_lost = total_acked + acked, total_lost + lost
            restored = sum(s["feedback"] for s in states.values())
            print(f"kill {k + 1:2d}: acknowledged {acked:4d}, lost {lost}, feedback rows after restart {restored}")
    finally:
        server.stop()
    print(
        f"{args.kills} SIGKILLs of {args.workers} server process(es) on {db.split(':')[0]}: "
        f"{total_acked} acknowledged feedback, {total_lost} lost"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each load level")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--arms", type=int, default=1000)
    p.add_argument("--workloads", nargs="+", choices=["whittle", "milp"], default=["whittle", "milp"])
    p.add_argument(
        "--deadline",
        type=float,
        nargs="+",
        default=[0.05, 0.01],
        help="MILP deadline(s) per decision, seconds (one table block each)",
    )
    p.add_argument("--episodes", type=int, default=3, help="training episodes of the J = 20 policy")
    p.add_argument("--engine-pool", type=int, default=2, help="engines per policy and server process")
    p.add_argument("--workers", type=int, default=2, help="server processes (redwood serve --workers)")
    p.add_argument("--db", help="database URL (default: a SQLite file in a temporary directory)")
    p.add_argument("--kills", type=int, default=0, help="run this many SIGKILL/restart trials instead")
    p.add_argument("--kill-after", type=float, default=1.0, help="mean seconds of streaming before each kill")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (kills if args.kills else bench)(args, Path(tmp))


if __name__ == "__main__":
    main()
