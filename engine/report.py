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
