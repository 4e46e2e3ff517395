"""Tables and plots of evaluation results."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def label(method: str) -> str:
    """Human-readable method name (the method's key when it has no label)."""
    from engine.analysis.evaluation import METHOD_LABELS

    return METHOD_LABELS.get(method, method)


def _group(res: dict, versions: dict[str, set]) -> str:
    """A table row group: the scenario, with the policy's version where several policies of one scenario (other
    instances or checkpoints) are in the results, so different instances are never pooled."""
    scenario = res["scenario"]
    several = len(versions.get(scenario, set())) > 1
    return f"{scenario} ({str(res.get('policy_version'))[:8]})" if several else scenario


def ci_cell(ci: tuple[float, float] | list[float] | None, spec: str = ".2f") -> str:
    """An interval, or ``n/a`` where none was computed (it would rest on one value: one seed, or one episode)."""
    return "n/a (n = 1)" if ci is None else f"[{ci[0]:{spec}}, {ci[1]:{spec}}]"


def pct_cell(pct: float | None) -> str:
    """A % of the bound or optimum; a dagger above 100 (sampling noise on few episodes, explained under the table)."""
    if pct is None:
        return "-"
    return f"{pct:.1f}" + ("†" if pct > 100.0 else "")


ABOVE_NOTE = "† above the certified bound (or the optimum): sampling noise of the episodes' mean, not a real excess."
SAME_EPISODES_NOTE = (
    "The best planner is the planner with the highest mean on these same episodes (chosen and compared on them)."
)


def markdown_table(results: list[dict], reference: str | None = None) -> str:
    """One row per (scenario, method), averaged over seeds (one group per policy where several policies share a
    scenario): mean expected return with its 95% interval (bootstrap over the pooled episodes), % of the certified
    upper bound, the paired difference against each result's own best planner (per-episode, common random
    numbers) and the decision time."""
    versions: dict[str, set] = {}
    for res in results:
        versions.setdefault(res["scenario"], set()).add(res.get("policy_version"))
    rows: dict[tuple[str, str], dict] = {}
    for res in results:
        best = res.get("best_planner")
        for method, per_ep in res["per_episode_expected"].items():
            row = rows.setdefault(
                (_group(res, versions), method),
                {"returns": [], "median_s": [], "bound_pct": [], "vs_planner": [], "best": 0, "results": 0},
            )
            row["returns"] += per_ep
            row["results"] += 1
            row["best"] += method == best
            row["median_s"].append(res["methods"][method]["decision_seconds"]["median"])
            if res.get("upper_bound"):
                row["bound_pct"].append(100 * float(np.mean(per_ep)) / res["upper_bound"])
            if best and best in res["per_episode_expected"] and method != best:
                row["vs_planner"] += list(np.asarray(per_ep) - np.asarray(res["per_episode_expected"][best]))
    from engine.analysis.evaluation import bootstrap_ci

    lines = [
        "| scenario | method | mean return | 95% CI | % of upper bound | vs best planner (95% CI) | "
        "median decision (ms) |",
        "|---|---|---:|---|---:|---|---:|",
    ]
    above = False
    for (scenario, method), row in sorted(rows.items(), key=lambda kv: (kv[0][0], -np.mean(kv[1]["returns"]))):
        ci = bootstrap_ci(np.asarray(row["returns"])) if len(row["returns"]) >= 2 else None
        pct = float(np.mean(row["bound_pct"])) if row["bound_pct"] else None
        above |= pct is not None and pct > 100.0
        if row["best"] == row["results"]:
            vs = "best planner"
        elif row["vs_planner"]:
            d = np.asarray(row["vs_planner"])
            vs = f"{d.mean():+.2f} {ci_cell(bootstrap_ci(d, seed=1) if d.size >= 2 else None, '+.2f')}"
            if row["best"]:
                vs += f" (the best planner in {row['best']} of {row['results']})"
        else:
            vs = "-"
        lines.append(
            f"| {scenario} | {label(method)} | {np.mean(row['returns']):.2f} | "
            f"{ci_cell(ci)} | {pct_cell(pct)} | {vs} | "
            f"{1000 * np.median(row['median_s']):.1f} |"
        )
    notes = [SAME_EPISODES_NOTE] + ([ABOVE_NOTE] if above else [])
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _color(method: str, trained: str = "dqn_mip") -> str:
    from engine.analysis.evaluation import PLANNER_METHODS

    if method in (trained, "iterative_dqn"):
        return "tab:red"
    return "tab:orange" if method in PLANNER_METHODS else "tab:green"


def plot_evaluation(results: list[dict], path: str | Path) -> Path:
    """Per scenario (columns): mean expected return with 95% intervals per method and the certified upper
    bound as a line (trained policies red, planners orange, baselines green); the paired difference of every
    method against the best planner; median decision times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.analysis.evaluation import bootstrap_ci

    scenarios = sorted({r["scenario"] for r in results})
    fig, axes = plt.subplots(3, len(scenarios), figsize=(5.5 * len(scenarios), 10), squeeze=False)
    for col, scenario in enumerate(scenarios):
        runs = [r for r in results if r["scenario"] == scenario]
        pooled: dict[str, list[float]] = {}
        diffs: dict[str, list[float]] = {}
        times: dict[str, list[float]] = {}
        for res in runs:
            best = res.get("best_planner")
            for method, per_ep in res["per_episode_expected"].items():
                pooled.setdefault(method, []).extend(per_ep)
                times.setdefault(method, []).append(res["methods"][method]["decision_seconds"]["median"])
                if best:
                    diffs.setdefault(method, []).extend(
                        np.asarray(per_ep) - np.asarray(res["per_episode_expected"][best])
                    )
        names = sorted(pooled, key=lambda m: -np.mean(pooled[m]))
        labels = [label(m) for m in names]
        colors = [_color(m) for m in names]
        means = np.array([np.mean(pooled[m]) for m in names])
        cis = np.array([bootstrap_ci(np.asarray(pooled[m])) for m in names])
        ax = axes[0, col]
        ax.bar(labels, means, yerr=[means - cis[:, 0], cis[:, 1] - means], capsize=4, color=colors)
        bounds = [r["upper_bound"] for r in runs if r.get("upper_bound")]
        if bounds:
            ax.axhline(float(np.mean(bounds)), color="k", ls="--", lw=1, label="certified upper bound (LP)")
            ax.legend(fontsize=7, loc="lower left")
        ax.set_title(f"{scenario}: expected return (95% CI)")
        ax = axes[1, col]
        if diffs:
            d_names = [m for m in names if m in diffs]
            d_means = np.array([np.mean(diffs[m]) for m in d_names])
            d_cis = np.array([bootstrap_ci(np.asarray(diffs[m]), seed=1) for m in d_names])
            ax.bar(
                [label(m) for m in d_names],
                d_means,
                yerr=[d_means - d_cis[:, 0], d_cis[:, 1] - d_means],
                capsize=4,
                color=[_color(m) for m in d_names],
            )
            ax.axhline(0, color="k", lw=0.8)
            ax.set_title(f"paired difference vs best planner ({label(runs[0]['best_planner'])})")
        else:
            ax.set_visible(False)
        ax = axes[2, col]
        ax.bar(labels, [max(1000 * np.median(times[m]), 1e-3) for m in names], color="tab:blue")
        ax.set_yscale("log")
        ax.set_title("median decision time (ms)")
        for ax in axes[:, col]:
            ax.tick_params(axis="x", rotation=45)
            for tick in ax.get_xticklabels():
                tick.set_horizontalalignment("right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_markdown(summary: dict) -> str:
    """Tables of a sweep summary (:func:`engine.experiments.sweep_summary.aggregate`): per domain and method the
    mean expected return over seeds with 95% intervals (t over seed means; bootstrap over episodes stratified by seed),
    % of the certified upper bound and of the exact optimum, and the median decision time; then the trained
    policy's paired gain over the best baseline per domain."""
    domains = summary["domains"]
    lines = [
        "| domain | method | mean return | 95% CI (seeds) | 95% CI (episodes) | % of upper bound | "
        "% of exact optimum | median decision (ms) |",
        "|---|---|---:|---|---|---:|---:|---:|",
    ]

    def fmt(value: float | None, spec: str = ".1f") -> str:
        return "-" if value is None else format(value, spec)

    above = False
    for domain, entry in domains.items():
        order = sorted(entry["methods"].items(), key=lambda kv: -kv[1]["mean_expected_return"])
        for method, m in order:
            name = f"**{label(method)}**" if method == summary.get("trained") else label(method)
            above |= any((m.get(k) or 0.0) > 100.0 for k in ("pct_of_upper_bound", "pct_of_exact_optimum"))
            lines.append(
                f"| {domain} | {name} | {m['mean_expected_return']:.2f} | {ci_cell(m['ci95_seeds'])} | "
                f"{ci_cell(m['ci95_episodes'])} | {pct_cell(m['pct_of_upper_bound'])} | "
                f"{pct_cell(m['pct_of_exact_optimum'])} | {1000 * m['median_decision_seconds']:.1f} |"
            )
        for method in entry.get("methods_not_applicable") or []:
            lines.append(f"| {domain} | {label(method)} | does not apply to this domain's instances | | | | | |")
        for method, seeds in (entry.get("methods_on_some_seeds") or {}).items():
            lines.append(f"| {domain} | {label(method)} | evaluated on seeds {seeds} only: not averaged | | | | | |")
    if above:
        lines += ["", ABOVE_NOTE]
    lines += [
        "",
        f"Paired gain of {summary.get('trained')} over the best baseline (per-episode differences on "
        "common random numbers):",
        "",
        "| domain | seeds | best baseline | gain | 95% CI (episodes) | 95% CI (seeds) | relative | "
        "upper bound | exact optimum |",
        "|---|---|---|---:|---|---|---:|---:|---:|",
    ]
    for domain, entry in domains.items():
        g = entry["gain"]
        if not g:
            continue
        rel = "-" if g["relative"] is None else f"{100 * g['relative']:+.1f}%"
        lines.append(
            f"| {domain} | {len(entry['seeds'])} | {label(entry['best_baseline'])} | {g['mean']:+.2f} | "
            f"{ci_cell(g['ci95_episodes'], '+.2f')} | {ci_cell(g['ci95_seeds'], '+.2f')} | {rel} | "
            f"{fmt(entry['upper_bound'], '.2f')} | {fmt(entry['exact_optimum'], '.2f')} |"
        )
    lines += _planner_gain_rows(summary)
    key = "trained_pct_of_exact_optimum"
    exact = [(d, e[key]) for d, e in domains.items() if e.get(key)]
    if exact:
        lines += [
            "",
            f"{summary.get('trained')} evaluated exactly (DP policy evaluation of its greedy policy, no "
            "sampling noise), % of the exact optimum:",
            "",
            "| domain | mean | lowest seed | per seed |",
            "|---|---:|---:|---|",
        ]
        lines += [
            f"| {d} | {p['mean']:.1f} | {p['min']:.1f} | {', '.join(f'{v:.1f}' for v in p['per_seed'])} |"
            for d, p in exact
        ]
    overall = summary.get("overall", {})
    if overall.get("mean_relative_gain") is not None:
        lines += [
            "",
            f"Mean relative gain over {overall['n_domains']} domains: "
            f"{100 * overall['mean_relative_gain']:+.1f}%; significantly better (episode CI above 0) in "
            f"{overall['domains_significantly_better']} of {overall['n_domains']}.",
        ]
    return "\n".join(lines) + "\n"


def _planner_gain_rows(summary: dict) -> list[str]:
    """The trained policy against the best planner per domain: paired gain, and per seed its interval."""
    domains = summary["domains"]
    entries = [(d, e) for d, e in domains.items() if e.get("gain_over_best_planner")]
    if not entries:
        return []
    lines = [
        "",
        f"Paired gain of {summary.get('trained')} over the best planner (per-episode differences on common "
        "random numbers; per seed: mean [95% CI]):",
        "",
        "| domain | best planner | gain | 95% CI (episodes) | relative | per seed | planners' exact % of "
        "optimum (lowest seed) |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for domain, entry in entries:
        g = entry["gain_over_best_planner"]
        rel = "-" if g["relative"] is None else f"{100 * g['relative']:+.2f}%"
        seeds = ", ".join(
            f"{m:+.1f} {ci_cell(ci, '+.1f')}" for m, ci in zip(g["per_seed"], g["ci95_per_seed"], strict=True)
        )
        exact = ", ".join(
            f"{label(m)} {p['mean']:.2f} ({p['min']:.2f})"
            for m, p in (entry.get("planner_exact_pct_of_optimum") or {}).items()
            if p
        )
        lines.append(
            f"| {domain} | {label(entry['best_planner'])} | {g['mean']:+.2f} | {ci_cell(g['ci95_episodes'], '+.2f')} | "
            f"{rel} | {seeds} | {exact or '-'} |"
        )
    lines += ["", SAME_EPISODES_NOTE]
    overall = summary.get("overall", {})
    if overall.get("mean_relative_gain_over_best_planner") is not None:
        lines += [
            "",
            f"Mean relative gain over the best planner: "
            f"{100 * overall['mean_relative_gain_over_best_planner']:+.2f}%; seeds significantly worse than "
            f"the best planner: {overall['seeds_significantly_worse_than_best_planner']}.",
        ]
    return lines


def plot_sweep(summary: dict, path: str | Path) -> Path:
    """Per domain (columns): mean return with 95% intervals per method, % of the upper bound, and the
    median decision time (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = summary["domains"]
    fig, axes = plt.subplots(3, len(domains), figsize=(4.5 * len(domains), 10), squeeze=False)
    for col, (domain, entry) in enumerate(domains.items()):
        names = sorted(entry["methods"], key=lambda n: -entry["methods"][n]["mean_expected_return"])
        ms = [entry["methods"][n] for n in names]
        colors = [_color(n, summary.get("trained") or "dqn_mip") for n in names]
        labels = [label(n) for n in names]
        means = np.array([m["mean_expected_return"] for m in ms])
        cis = np.array([m["ci95_seeds"] or (m["mean_expected_return"],) * 2 for m in ms])  # no bar with one seed
        ax = axes[0, col]
        ax.bar(labels, means, yerr=[means - cis[:, 0], cis[:, 1] - means], capsize=4, color=colors)
        if entry.get("upper_bound") is not None:
            ax.axhline(entry["upper_bound"], color="k", ls="--", lw=1, label="upper bound")
        if entry.get("exact_optimum") is not None:
            ax.axhline(entry["exact_optimum"], color="tab:purple", ls=":", lw=1, label="exact optimum")
        ax.set_title(f"{domain}: expected return (95% CI, {len(entry['seeds'])} seeds)")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        pct = [m["pct_of_upper_bound"] or 0.0 for m in ms]
        ax.bar(labels, pct, color=colors)
        ax.axhline(100, color="k", ls="--", lw=1)
        ax.set_title("% of certified upper bound")
        ax = axes[2, col]
        ax.bar(labels, [max(1000 * m["median_decision_seconds"], 1e-3) for m in ms], color="tab:blue")
        ax.set_yscale("log")
        ax.set_title("median decision time (ms)")
        for ax in axes[:, col]:
            ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
