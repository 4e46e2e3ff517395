"""The summary of a sweep's results: per domain and method the mean returns and their intervals across seeds,
the % of the certified bound and of the DP optimum, the trained policy's gain over the best baseline and over
the best planner (paired, stratified by seed), and how many seeds are significantly worse."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analysis.evaluation import PLANNER_METHODS

TRAINED = "dqn_mip"


def aggregate(results: list[dict], trained: str = TRAINED) -> dict:
    """Per domain across seeds: mean return per method with 95% intervals (t over seed means, and a
    bootstrap over episodes stratified by seed), % of the upper bound / exact optimum, median decision
    time, and the paired gain of ``trained`` over the best other method (by mean return)."""
    domains: dict[str, dict] = {}
    for domain in dict.fromkeys(r["domain"] for r in results):
        runs = sorted((r for r in results if r["domain"] == domain), key=lambda r: r["seed"])
        every = list(dict.fromkeys(m for r in runs for m in r["methods"]))
        names = [m for m in every if all(m in r["methods"] for r in runs)]  # compared on every seed
        # a method some seeds lack (a planner that applies to some instances only) is named, not averaged
        partial = {m: [r["seed"] for r in runs if m in r["methods"]] for m in every if m not in names}
        methods: dict[str, dict[str, Any]] = {}
        for m in names:
            per_seed = [r["methods"][m]["mean_expected_return"] for r in runs]
            groups = [np.asarray(r["per_episode_expected"][m]) for r in runs]
            methods[m] = {
                "mean_expected_return": float(np.mean(per_seed)),
                "ci95_seeds": _t_interval(per_seed),
                "ci95_episodes": _stratified_ci(groups),
                "per_seed": per_seed,
                "pct_of_upper_bound": _mean_or_none([r["methods"][m].get("pct_of_upper_bound") for r in runs]),
                "pct_of_exact_optimum": _mean_or_none([r["methods"][m].get("pct_of_exact_optimum") for r in runs]),
                "median_decision_seconds": float(
                    np.median([r["methods"][m]["decision_seconds"]["median"] for r in runs])
                ),
            }
        entry: dict[str, Any] = {
            "seeds": [r["seed"] for r in runs],
            "methods": methods,
            "methods_on_some_seeds": partial,
            "methods_not_applicable": sorted({m for r in runs for m in r.get("methods_not_applicable", [])}),
            "upper_bound": _mean_or_none([r["upper_bound"] for r in runs]),  # None unless every seed has one
            "exact_optimum": _mean_or_none([r.get("exact_optimum") for r in runs]),
            "trained_pct_of_exact_optimum": _pct_summary([r.get("trained_pct_of_exact_optimum") for r in runs]),
            "best_baseline": None,
            "gain": None,
        }
        baselines = [m for m in names if m != trained]
        if trained in names and baselines:
            best = max(baselines, key=lambda m: methods[m]["mean_expected_return"])
            entry["best_baseline"] = best
            entry["gain"] = _gain(runs, trained, best, methods[best]["mean_expected_return"])
        planners = [m for m in names if m in PLANNER_METHODS]
        if trained in names and planners:
            best = max(planners, key=lambda m: methods[m]["mean_expected_return"])
            entry["best_planner"] = best
            entry["gain_over_best_planner"] = _gain(runs, trained, best, methods[best]["mean_expected_return"])
            entry["planner_exact_pct_of_optimum"] = {
                m: _pct_summary([r.get("planner_exact_pct_of_optimum", {}).get(m) for r in runs]) for m in planners
            }
        domains[domain] = entry
    gains = [d["gain"] for d in domains.values() if d["gain"]]
    over_planner = [d["gain_over_best_planner"] for d in domains.values() if d.get("gain_over_best_planner")]
    overall = {
        "mean_relative_gain": _mean_or_none([g["relative"] for g in gains]),
        "domains_significantly_better": sum(
            g["ci95_episodes"] is not None and g["ci95_episodes"][0] > 0 for g in gains
        ),
        "mean_relative_gain_over_best_planner": _mean_or_none([g["relative"] for g in over_planner]),
        "seeds_significantly_worse_than_best_planner": sum(
            sum(ci is not None and ci[1] < 0 for ci in g["ci95_per_seed"]) for g in over_planner
        ),
        "n_domains": len(domains),
    }
    return {"trained": trained, "domains": domains, "overall": overall}


def _gain(runs: list[dict], trained: str, best: str, base: float) -> dict:
    """Paired per-episode difference of ``trained`` against ``best`` on every seed, and across seeds."""
    from engine.analysis.evaluation import bootstrap_ci

    diffs = [np.asarray(r["per_episode_expected"][trained]) - np.asarray(r["per_episode_expected"][best]) for r in runs]
    per_seed = [float(d.mean()) for d in diffs]
    return {
        "mean": float(np.mean(per_seed)),
        "ci95_seeds": _t_interval(per_seed),
        "ci95_episodes": _stratified_ci(diffs),
        "relative": float(np.mean(per_seed) / abs(base)) if base else None,
        "per_seed": per_seed,
        "ci95_per_seed": [bootstrap_ci(d, seed=1) if d.size >= 2 else None for d in diffs],
    }


def _t_interval(values: list[float]) -> tuple[float, float] | None:
    """95% Student-t interval of the mean; None with one value (no spread to estimate it from)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return None
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


def _stratified_ci(groups: list[np.ndarray], n_resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of the mean of per-group means, resampling episodes within groups; None
    when no group has two episodes (nothing to resample)."""
    if all(np.asarray(g).size < 2 for g in groups):
        return None
    rng = np.random.default_rng(seed)
    means = np.zeros(n_resamples)
    for g in groups:
        g = np.asarray(g, dtype=float)
        means += g[rng.integers(0, g.size, (n_resamples, g.size))].mean(axis=1) if g.size > 1 else g.mean()
    means /= len(groups)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def _pct_summary(values: list[float | None]) -> dict | None:
    """Mean, lowest and per-seed values (None unless every seed has one)."""
    mean = _mean_or_none(values)
    if mean is None:
        return None
    vals = [v for v in values if v is not None]  # all of them: the mean is None otherwise
    return {"mean": mean, "min": float(np.min(vals)), "per_seed": [float(v) for v in vals]}


def _mean_or_none(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals and len(vals) == len(values) else None
