"""Regret experiments with seeds and common random numbers, returning plain JSON-able dicts.

``run_regret(environment, policies, rounds, seeds)``:
  - combinatorial: ``environment`` is a ``SemiBanditEnvironment``; each round's pseudo-regret is
    oracle(true means) - true means . chosen action, against the best subset of that round (the best fixed
    subset when there are no contexts);
  - restless: ``environment`` is ``RestlessArms`` (pass ``budget``, ``episode_length``); ``rounds`` are
    episodes; each episode's regret is the return of the Whittle policy that knows the transitions minus
    the learner's return on the same random numbers; the LP upper bound per episode is reported too.
``policies`` maps a name to a factory ``seed -> policy``. Sublinearity diagnostics per policy: regret of
the first and second halves and the log-log slope of cumulative regret over the last 90% of rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bandits.combinatorial.simulator import SemiBanditEnvironment
from bandits.restless.arms import RestlessArms
from bandits.restless.lp_bound import LPBound
from bandits.restless.simulator import simulate
from bandits.restless.whittle_policy import WhittlePolicy
from scenarios.errors import InvalidInputError


def run_regret(
    environment: SemiBanditEnvironment | RestlessArms,
    policies: dict[str, Callable[[int], Any]],
    rounds: int,
    seeds: tuple[int, ...] | list[int] = (0,),
    budget: float | None = None,
    episode_length: int = 20,
    discount: float = 0.95,
) -> dict[str, Any]:
    if int(rounds) != rounds or rounds < 2:
        raise InvalidInputError("rounds", "expected an integer >= 2")
    if not policies:
        raise InvalidInputError("policies", "at least one policy factory is required")
    if isinstance(environment, RestlessArms):
        if budget is None:
            raise InvalidInputError("budget", "restless experiments need a budget")
        per_seed, extra = _restless(environment, policies, int(rounds), list(seeds), budget, episode_length, discount)
        kind = "restless"
    elif isinstance(environment, SemiBanditEnvironment):
        per_seed, extra = _combinatorial(environment, policies, int(rounds), list(seeds)), {}
        kind = "combinatorial"
    else:
        raise InvalidInputError("environment", f"unsupported environment {type(environment).__name__}")
    curves, summary = {}, {}
    for name, regrets in per_seed.items():
        cum = np.cumsum(np.asarray(regrets), axis=1)  # (seeds, rounds)
        mean = cum.mean(0)
        stderr = cum.std(0, ddof=1) / np.sqrt(cum.shape[0]) if cum.shape[0] > 1 else np.zeros_like(mean)
        half = rounds // 2
        t = np.arange(1, rounds + 1)
        tail = t >= max(2, rounds // 10)
        positive = tail & (mean > 0)
        slope = float(np.polyfit(np.log(t[positive]), np.log(mean[positive]), 1)[0]) if positive.sum() > 2 else None
        curves[name] = {"mean": mean.tolist(), "stderr": stderr.tolist()}
        summary[name] = {
            "final": float(mean[-1]),
            "final_stderr": float(stderr[-1]),
            "first_half": float(mean[half - 1]),
            "second_half": float(mean[-1] - mean[half - 1]),
            "loglog_slope": slope,
        }
    return {"kind": kind, "rounds": int(rounds), "seeds": list(seeds), "curves": curves, "summary": summary} | extra


def _combinatorial(env: SemiBanditEnvironment, policies, rounds: int, seeds: list[int]) -> dict[str, list]:
    out: dict[str, list] = {name: [] for name in policies}
    for seed in seeds:
        for name, factory in policies.items():
            policy = factory(seed)
            rng = np.random.default_rng([seed, 104729])  # same rounds for every policy (common random numbers)
            regret = np.empty(rounds)
            for t in range(rounds):
                x, mu, r = env.draw(rng)
                sel = policy.select(x) if x is not None else policy.select()
                policy.update(sel.action, np.where(sel.action > 0, r, np.nan), x)
                regret[t] = env.oracle.solve(mu).value - float(mu @ sel.action)
            out[name].append(regret)
    return out


def _restless(
    arms: RestlessArms, policies, episodes: int, seeds: list[int], budget: float, length: int, discount: float
) -> tuple[dict[str, list], dict[str, Any]]:
    oracle = WhittlePolicy(arms, budget, discount)
    bound = LPBound(arms, budget, horizon=length, discount=1.0).fit()
    out: dict[str, list] = {name: [] for name in policies}
    benchmark = []
    for seed in seeds:
        best = simulate(arms, oracle, budget, length, episodes, seed=seed, parallel=False)["returns"]
        benchmark.append(best)
        for name, factory in policies.items():
            got = simulate(arms, factory(seed), budget, length, episodes, seed=seed, parallel=False)["returns"]
            out[name].append(best - got)
    extra = {
        "benchmark": {
            "name": "whittle_known_transitions",
            "mean_return": float(np.mean(benchmark)),
            "lp_bound": bound.value,
            "episode_length": length,
        }
    }
    return out, extra
