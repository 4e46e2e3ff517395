"""Regret experiments: ``run_regret(...) -> dict`` and ``plot_regret(result, path)``."""

from bandits.experiments.plotting import plot_regret
from bandits.experiments.regret import run_regret

__all__ = ["plot_regret", "run_regret"]
