"""REST batch decisions against single requests: N states in one ``POST .../decisions/batch`` vs N
``POST .../decisions``, same planner policy, same states, same run (in-process ASGI client, SQLite log).

    python bench/bench_rest_batch.py [--states 100] [--n-arms 20] [--budget 5]

A planner policy on a budget, capacity or scheduling structure decides the batch in one vectorised call and logs
it in one transaction (api/service/decisions.py ``decide_vectorised``); each state is still its own logged decision.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from api.service import Settings, create_app
from scenarios import make

KEY = "bench-admin-key-0123456789"


def _states(scenario: str, n: int, n_arms: int, budget: int, seed: int = 0) -> list[list[int]]:
    """Random valid states (each arm within its own states, time to go within the horizon)."""
    instance = make(scenario, n_arms=n_arms, budget=budget).instance
    counts, horizon = instance.arms.state_counts, instance.horizon
    rng = np.random.default_rng(seed)
    return [[*map(int, rng.integers(0, counts)), int(rng.integers(1, horizon + 1))] for _ in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--states", type=int, default=100)
    p.add_argument("--n-arms", type=int, default=20)
    p.add_argument("--budget", type=int, default=5)
    args = p.parse_args()
    headers = {"X-API-Key": KEY}
    print("| scenario | J | states | single requests (s) | one batch request (s) | speed-up | same actions |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            db_url=f"sqlite:///{Path(tmp) / 'r.db'}",
            policy_dir=Path(tmp),
            secret="bench",
            bootstrap_key=KEY,
            max_batch_states=max(100, args.states),
        )
        with TestClient(create_app(settings)) as client:
            for scenario in ("budgeted", "capacity", "scheduling"):
                body = {"scenario": scenario, "planner": "whittle", "n_arms": args.n_arms, "budget": args.budget}
                r = client.post("/v1/planners", json=body, headers=headers)
                r.raise_for_status()
                pid = r.json()["id"]
                states = _states(scenario, args.states, args.n_arms, args.budget)
                url = f"/v1/policies/{pid}/decisions"
                client.post(url, json={"state": states[0]}, headers=headers).raise_for_status()  # warm up
                client.post(f"{url}/batch", json={"states": states[:2]}, headers=headers).raise_for_status()
                start = time.perf_counter()
                singles = [client.post(url, json={"state": s}, headers=headers).json() for s in states]
                single = time.perf_counter() - start
                start = time.perf_counter()
                batch = client.post(f"{url}/batch", json={"states": states}, headers=headers)
                batched = time.perf_counter() - start
                batch.raise_for_status()
                got = batch.json()["decisions"]
                same = sum(a["action"] == b["action"] for a, b in zip(singles, got, strict=True))
                print(
                    f"| {scenario} | {args.n_arms} | {args.states} | {single:.3f} | {batched:.3f} "
                    f"| {single / batched:.1f}x | {same}/{args.states} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
