"""Reusable plots for notebooks and reports: learning curves, returns with 95% intervals, decision-time
distributions, allocations over time, routing decisions on their graph and maze trajectories.

Every function draws on a matplotlib ``Axes`` (a new figure when ``ax`` is None) and returns it, so plots
compose into subplots. Tables and the file-writing evaluation figure live in :mod:`engine.experiments.report`;
``bootstrap_ci`` comes from :mod:`engine.analysis.evaluation`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from engine.analysis.evaluation import bootstrap_ci
from engine.decision import Decision


def _axes(ax: Any = None, figsize: tuple[float, float] = (6.0, 3.5)) -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def moving_average(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (shorter at the start), same length as ``values``."""
    x = np.asarray(values, dtype=float)
    if x.size == 0 or window <= 1:
        return x.copy()
    csum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def per_episode_returns(evaluation: Any, kind: str = "expected") -> dict[str, list[float]]:
    """``{method: per-episode returns}`` from an :class:`engine.analysis.evaluation.Evaluation`, its ``to_dict()``,
    or a mapping that already has that shape."""
    if hasattr(evaluation, "methods"):
        return {name: list(getattr(r, kind)) for name, r in evaluation.methods.items()}
    if isinstance(evaluation, Mapping) and "per_episode_expected" in evaluation:
        return {name: list(v) for name, v in evaluation["per_episode_expected"].items()}
    return {name: list(np.asarray(v, dtype=float)) for name, v in dict(evaluation).items()}


def decision_times(evaluation: Any) -> dict[str, list[float]]:
    """``{method: per-decision seconds}`` from an :class:`engine.analysis.evaluation.Evaluation`."""
    return {name: list(r.decision_seconds) for name, r in evaluation.methods.items()}


def returns_table(
    returns: Mapping[str, Sequence[float]], reference: float | None = None, reference_name: str = "bound"
) -> list[dict]:
    """Rows ``{method, mean, ci_low, ci_high, pct}`` (``pct`` = 100 * mean / ``reference`` when given)."""
    rows = []
    for name, values in returns.items():
        v = np.asarray(values, dtype=float)
        lo, hi = bootstrap_ci(v)
        row = {"method": name, "mean": float(v.mean()), "ci_low": lo, "ci_high": hi}
        if reference:
            row[f"% of {reference_name}"] = 100.0 * float(v.mean()) / reference
        rows.append(row)
    return rows


def plot_learning_curve(
    returns: Sequence[float],
    ax: Any = None,
    window: int = 10,
    label: str = "episode",
    ylabel: str = "training return",
    reference: Mapping[str, float] | None = None,
) -> Any:
    """Per-episode training returns (faint) with their moving average, plus optional horizontal references
    (e.g. ``{"exact optimum": 62.8, "myopic": 34.9}``)."""
    ax = _axes(ax)
    y = np.asarray(returns, dtype=float)
    x = np.arange(1, y.size + 1)
    ax.plot(x, y, color="tab:blue", alpha=0.3, lw=1, label=label)
    ax.plot(x, moving_average(y, window), color="tab:blue", lw=2, label=f"moving average ({window})")
    for k, (name, value) in enumerate((reference or {}).items()):
        ax.axhline(value, ls="--", lw=1, color=f"C{k + 1}", label=name)
    ax.set_xlabel("episode")
    ax.set_ylabel(ylabel)
    ax.set_title("learning curve")
    ax.legend(fontsize=8)
    return ax


def plot_returns(
    returns: Any,
    ax: Any = None,
    upper_bound: float | None = None,
    optimum: float | None = None,
    title: str = "return per method (95% bootstrap CI)",
    xlabel: str = "mean return",
) -> Any:
    """Horizontal bars of the mean return per method with bootstrap 95% intervals, sorted best first; the
    certified upper bound and the exact optimum (when known) as vertical lines."""
    ax = _axes(ax, (6.5, 0.45 * max(len(per_episode_returns(returns)), 3) + 1.2))
    rows = sorted(returns_table(per_episode_returns(returns)), key=lambda r: r["mean"])
    names = [r["method"] for r in rows]
    means = np.array([r["mean"] for r in rows])
    err = np.array([[r["mean"] - r["ci_low"] for r in rows], [r["ci_high"] - r["mean"] for r in rows]])
    ax.barh(names, means, xerr=err, capsize=3, color="tab:green", alpha=0.8)
    if upper_bound is not None:
        ax.axvline(upper_bound, color="tab:red", ls="--", label=f"upper bound {upper_bound:.1f}")
    if optimum is not None:
        ax.axvline(optimum, color="black", ls=":", label=f"exact optimum {optimum:.1f}")
    if upper_bound is not None or optimum is not None:
        ax.legend(fontsize=8, loc="lower right")
    if np.all(means <= 0):  # costs: keep the bars readable
        ax.set_xlim(right=0)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return ax


def plot_decision_times(
    times: Mapping[str, Sequence[float]], ax: Any = None, title: str = "decision time per method"
) -> Any:
    """Box plots of per-decision wall-clock times in milliseconds, log scale (zeros clipped to 1 us)."""
    ax = _axes(ax, (6.5, 0.45 * max(len(times), 3) + 1.2))
    names = list(times)
    data = [np.maximum(1000.0 * np.asarray(times[n], dtype=float), 1e-3) for n in names]
    import matplotlib

    horizontal = (
        {"orientation": "horizontal"}
        if tuple(map(int, matplotlib.__version__.split(".")[:2])) >= (3, 10)
        else {"vert": False}
    )
    ax.boxplot(data, showfliers=True, flierprops={"markersize": 2}, **horizontal)
    ax.set_yticks(np.arange(1, len(names) + 1), names)
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per decision (log)")
    ax.set_title(title)
    return ax


def episode_trace(instance: Any, policy: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Run one evaluation episode of a coRMAB ``policy`` (``act(states, time_to_go, rng)``) and record
    ``states`` (H, J) before each decision, ``actions`` (H, n_actions) and ``expected`` rewards (H,)."""
    env = instance.make_env()
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    states, actions, expected = [], [], []
    done = False
    while not done:
        out = policy.act(obs[:-1], int(obs[-1]), rng)
        action = out.action if isinstance(out, Decision) else np.asarray(out)
        states.append(obs[:-1].copy())
        actions.append(np.asarray(action).copy())
        obs, _, done, _, info = env.step(action)
        expected.append(info["expected_reward"])
    return {"states": np.array(states), "actions": np.array(actions), "expected": np.array(expected)}


def plot_allocations(
    actions: np.ndarray,
    states: np.ndarray | None = None,
    ax: Any = None,
    title: str = "allocations over time",
    ylabel: str = "arm",
    marked: str = "pulled",
) -> Any:
    """Heatmap of arms x time. With ``states`` of the same shape the colour is the arm's state and the pulled
    cells are marked; otherwise the colour is the action itself."""
    import matplotlib.pyplot as plt

    actions = np.asarray(actions)
    ax = _axes(ax, (7.0, 0.22 * actions.shape[1] + 1.5))
    if states is not None and np.shape(states) == actions.shape:
        img = ax.imshow(np.asarray(states).T, aspect="auto", cmap="YlGn", vmin=0, vmax=3, origin="lower")
        t, j = np.nonzero(actions > 0)
        ax.scatter(t, j, marker="s", s=18, facecolors="none", edgecolors="tab:red", linewidths=1.2, label=marked)
        ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 1.15))
        plt.colorbar(img, ax=ax, label="arm state", fraction=0.04)
    else:
        img = ax.imshow(actions.T, aspect="auto", cmap="Greys", origin="lower", interpolation="nearest")
        plt.colorbar(img, ax=ax, label="action", fraction=0.04)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax


def graph_layout(instance: Any, seed: int = 0) -> dict[int, np.ndarray]:
    """A deterministic layout of a routing instance's graph (Kamada-Kawai; spring layout as fallback)."""
    import networkx as nx

    graph = instance.graph()
    try:
        return nx.kamada_kawai_layout(graph)
    except Exception:  # any layout failure: the seeded spring layout
        return nx.spring_layout(graph, seed=seed)


def plot_routing(
    instance: Any,
    states: Sequence[int] | None = None,
    action: Sequence[int] | None = None,
    walk: Sequence[int] | None = None,
    pos: Mapping[int, Any] | None = None,
    ax: Any = None,
    title: str = "routing decision",
) -> Any:
    """The instance's graph: nodes coloured by arm state, pulled nodes ringed in red, the closed walk's
    edges drawn thick and numbered by the order of first traversal, the source as a square."""
    import networkx as nx

    ax = _axes(ax, (7.0, 6.0))
    graph = instance.graph()
    pos = dict(pos) if pos is not None else graph_layout(instance)
    nodes = list(graph.nodes)
    colour = np.asarray(states, dtype=float) if states is not None else np.zeros(len(nodes))
    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color="lightgrey", width=1.0)
    if walk is not None and len(walk) > 1:
        moves = [(u, v) for u, v in itertools.pairwise(walk) if u != v]
        nx.draw_networkx_edges(graph, pos, edgelist=moves, ax=ax, edge_color="tab:orange", width=3.5)
        seen: dict[tuple[int, int], int] = {}
        for k, (u, v) in enumerate(moves, 1):
            seen.setdefault((min(u, v), max(u, v)), k)
        nx.draw_networkx_edge_labels(
            graph, pos, edge_labels={e: str(k) for e, k in seen.items()}, ax=ax, font_size=7, font_color="tab:orange"
        )
    others = [n for n in nodes if n != instance.source]
    nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=others,
        node_color=colour[others],
        cmap="YlGn",
        vmin=0,
        vmax=3,
        edgecolors="grey",
        node_size=260,
        ax=ax,
    )
    nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=[instance.source],
        node_color=[colour[instance.source]],
        cmap="YlGn",
        vmin=0,
        vmax=3,
        node_shape="s",
        edgecolors="black",
        linewidths=2,
        node_size=340,
        ax=ax,
    )
    if action is not None:
        pulled = [int(j) for j in np.flatnonzero(np.asarray(action)[: len(nodes)] > 0)]
        nx.draw_networkx_nodes(
            graph, pos, nodelist=pulled, node_color="none", edgecolors="tab:red", linewidths=3, node_size=420, ax=ax
        )
    nx.draw_networkx_labels(graph, pos, font_size=7, ax=ax)
    ax.set_title(title)
    ax.set_axis_off()
    return ax


def plot_maze(instance: Any, paths: Mapping[str, np.ndarray] | None = None, ax: Any = None, title: str = "maze") -> Any:
    """Walls (grey), teleport tiles (source purple, arrow to target), start, goal disc and trajectories
    (arrays of (x, y) positions) of one or more policies."""
    from matplotlib.patches import Circle, Rectangle

    ax = _axes(ax, (5.0, 5.0))
    for x0, y0, x1, y1 in instance.walls:
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, color="dimgrey"))
    for tp in getattr(instance, "teleports", []):
        x0, y0, x1, y1 = tp.source
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, color="tab:purple", alpha=0.4))
        ax.annotate(
            "",
            xy=tp.target,
            xytext=((x0 + x1) / 2, (y0 + y1) / 2),
            arrowprops={"arrowstyle": "->", "color": "tab:purple", "ls": "--"},
        )
    goal_radius = float(getattr(instance, "goal_radius", 0.05))
    ax.add_patch(Circle(tuple(instance.goal), goal_radius, color="gold", alpha=0.8, label="goal"))
    ax.plot(*instance.start, "ko", label="start")
    for k, (name, path) in enumerate((paths or {}).items()):
        p = np.asarray(path, dtype=float)
        ax.plot(p[:, 0], p[:, 1], "-o", ms=2, lw=1.5, color=f"C{k}", label=f"{name} ({len(p) - 1} steps)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title)
    return ax


def rollout_positions(env: Any, policy: Callable[[np.ndarray], np.ndarray], seed: int = 0) -> np.ndarray:
    """The observations of one episode of an ``obs -> action`` policy (first two entries = position)."""
    obs, _ = env.reset(seed=seed)
    points = [np.asarray(obs, dtype=float)[:2]]
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        points.append(np.asarray(obs, dtype=float)[:2])
        done = terminated or truncated
    return np.array(points)
