"""Plot cumulative regret curves (mean and one standard error band) to a PNG with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_regret(result: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in result["curves"].items():
        mean, err = np.asarray(curve["mean"]), np.asarray(curve["stderr"])
        t = np.arange(1, mean.size + 1)
        ax.plot(t, mean, label=name)
        ax.fill_between(t, mean - err, mean + err, alpha=0.2)
    unit = "episode" if result.get("kind") == "restless" else "round"
    ax.set_xlabel(unit)
    ax.set_ylabel("cumulative regret")
    ax.set_title(title or f"{result.get('kind', '')} regret, seeds {result.get('seeds')}")
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
