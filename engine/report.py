"""Tables and plots of evaluation results."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def markdown_table(results: list[dict], reference: str | None = None) -> str:
    """One row per (scenario, method), averaged over seeds: mean expected return with its 95% interval
    (bootstrap over the pooled episodes), gain over the reference and decision time."""
    rows: dict[tuple[str, str], dict] = {}
    for res in results:
        for method, per_ep in res["per_episode_expected"].items():
            row = rows.setdefault((res["scenario"], method), {"returns": [], "median_s": [], "bound_pct": []})
            row["returns"] += per_ep
            row["median_s"].append(res["methods"][method]["decision_seconds"]["median"])
            if res.get("upper_bound"):
                row["bound_pct"].append(100 * float(np.mean(per_ep)) / res["upper_bound"])
    from engine.evaluation import bootstrap_ci

    lines = ["| scenario | method | mean return | 95% CI | % of upper bound | median decision (ms) |",
             "|---|---|---:|---|---:|---:|"]
    for (scenario, method), row in rows.items():
        lo, hi = bootstrap_ci(np.asarray(row["returns"]))
        pct = f"{np.mean(row['bound_pct']):.1f}" if row["bound_pct"] else "-"
        lines.append(f"| {scenario} | {method} | {np.mean(row['returns']):.2f} | [{lo:.2f}, {hi:.2f}] | {pct} | "
                     f"{1000 * np.median(row['median_s']):.1f} |")
    return "\n".join(lines) + "\n"


def plot_evaluation(results: list[dict], path: str | Path) -> Path:
    """Mean expected return with 95% intervals per method (one panel per scenario) and decision times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.evaluation import bootstrap_ci

    scenarios = sorted({r["scenario"] for r in results})
    fig, axes = plt.subplots(2, len(scenarios), figsize=(5 * len(scenarios), 7), squeeze=False)
    for col, scenario in enumerate(scenarios):
        pooled: dict[str, list[float]] = {}
        times: dict[str, list[float]] = {}
        for res in (r for r in results if r["scenario"] == scenario):
            for method, per_ep in res["per_episode_expected"].items():
                pooled.setdefault(method, []).extend(per_ep)
                times.setdefault(method, []).append(res["methods"][method]["decision_seconds"]["median"])
        names = list(pooled)
        means = np.array([np.mean(pooled[m]) for m in names])
        cis = np.array([bootstrap_ci(np.asarray(pooled[m])) for m in names])
        ax = axes[0, col]
        ax.bar(names, means, yerr=[means - cis[:, 0], cis[:, 1] - means], capsize=4, color="tab:green")
        ax.set_title(f"{scenario}: expected return (95% CI)")
        ax.tick_params(axis="x", rotation=45)
        ax = axes[1, col]
        ax.bar(names, [1000 * np.median(times[m]) for m in names], color="tab:blue")
        ax.set_yscale("log")
        ax.set_title("median decision time (ms)")
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_markdown(summary: dict) -> str:
    """Tables of a sweep summary (:func:`engine.sweep.aggregate`): per domain and method the mean expected
    return over seeds with 95% intervals (t over seed means; bootstrap over episodes stratified by seed),
    % of the certified upper bound and of the exact optimum, and the median decision time; then the trained
    policy's paired gain over the best baseline per domain."""
    domains = summary["domains"]
    lines = ["| domain | method | mean return | 95% CI (seeds) | 95% CI (episodes) | % of upper bound | "
             "% of exact optimum | median decision (ms) |", "|---|---|---:|---|---|---:|---:|---:|"]

    def fmt(value: float | None, spec: str = ".1f") -> str:
        return "-" if value is None else format(value, spec)

    for domain, entry in domains.items():
        order = sorted(entry["methods"].items(), key=lambda kv: -kv[1]["mean_expected_return"])
        for method, m in order:
            name = f"**{method}**" if method == summary.get("trained") else method
            (slo, shi), (elo, ehi) = m["ci95_seeds"], m["ci95_episodes"]
            lines.append(f"| {domain} | {name} | {m['mean_expected_return']:.2f} | [{slo:.2f}, {shi:.2f}] | "
                         f"[{elo:.2f}, {ehi:.2f}] | {fmt(m['pct_of_upper_bound'])} | "
                         f"{fmt(m['pct_of_exact_optimum'])} | {1000 * m['median_decision_seconds']:.1f} |")
    lines += ["", f"Paired gain of {summary.get('trained')} over the best baseline (per-episode differences on "
              "common random numbers):", "",
              "| domain | seeds | best baseline | gain | 95% CI (episodes) | 95% CI (seeds) | relative | "
              "upper bound | exact optimum |", "|---|---|---|---:|---|---|---:|---:|---:|"]
    for domain, entry in domains.items():
        g = entry["gain"]
        if not g:
            continue
        (elo, ehi), (slo, shi) = g["ci95_episodes"], g["ci95_seeds"]
        rel = "-" if g["relative"] is None else f"{100 * g['relative']:+.1f}%"
        lines.append(f"| {domain} | {len(entry['seeds'])} | {entry['best_baseline']} | {g['mean']:+.2f} | "
                     f"[{elo:+.2f}, {ehi:+.2f}] | [{slo:+.2f}, {shi:+.2f}] | {rel} | {entry['upper_bound']:.2f} | "
                     f"{fmt(entry['exact_optimum'], '.2f')} |")
    key = "trained_pct_of_exact_optimum"
    exact = [(d, e[key]) for d, e in domains.items() if e.get(key)]
    if exact:
        lines += ["", f"{summary.get('trained')} evaluated exactly (DP policy evaluation of its greedy policy, no "
                  "sampling noise), % of the exact optimum:", "", "| domain | mean | lowest seed | per seed |",
                  "|---|---:|---:|---|"]
        lines += [f"| {d} | {p['mean']:.1f} | {p['min']:.1f} | {', '.join(f'{v:.1f}' for v in p['per_seed'])} |"
                  for d, p in exact]
    overall = summary.get("overall", {})
    if overall.get("mean_relative_gain") is not None:
        lines += ["", f"Mean relative gain over {overall['n_domains']} domains: "
                  f"{100 * overall['mean_relative_gain']:+.1f}%; significantly better (episode CI above 0) in "
                  f"{overall['domains_significantly_better']} of {overall['n_domains']}."]
    return "\n".join(lines) + "\n"


def plot_sweep(summary: dict, path: str | Path) -> Path:
    """Per domain (columns): mean return with 95% intervals per method, % of the upper bound, and the
    median decision time (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = summary["domains"]
    fig, axes = plt.subplots(3, len(domains), figsize=(4.5 * len(domains), 10), squeeze=False)
    for col, (domain, entry) in enumerate(domains.items()):
        names = list(entry["methods"])
        ms = [entry["methods"][n] for n in names]
        colors = ["tab:red" if n == summary.get("trained") else "tab:green" for n in names]
        means = np.array([m["mean_expected_return"] for m in ms])
        cis = np.array([m["ci95_seeds"] for m in ms])
        ax = axes[0, col]
        ax.bar(names, means, yerr=[means - cis[:, 0], cis[:, 1] - means], capsize=4, color=colors)
        ax.axhline(entry["upper_bound"], color="k", ls="--", lw=1, label="upper bound")
        if entry.get("exact_optimum") is not None:
            ax.axhline(entry["exact_optimum"], color="tab:purple", ls=":", lw=1, label="exact optimum")
        ax.set_title(f"{domain}: expected return (95% CI, {len(entry['seeds'])} seeds)")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        pct = [m["pct_of_upper_bound"] or 0.0 for m in ms]
        ax.bar(names, pct, color=colors)
        ax.axhline(100, color="k", ls="--", lw=1)
        ax.set_title("% of certified upper bound")
        ax = axes[2, col]
        ax.bar(names, [max(1000 * m["median_decision_seconds"], 1e-3) for m in ms], color="tab:blue")
        ax.set_yscale("log")
        ax.set_title("median decision time (ms)")
        for ax in axes[:, col]:
            ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
