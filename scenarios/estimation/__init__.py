"""Estimating restless-arm dynamics from logged transitions: logs, Dirichlet posteriors, pooling."""

from __future__ import annotations

from scenarios.estimation.dirichlet import DynamicsPosterior, estimate_dynamics
from scenarios.estimation.kmeans import kmeans
from scenarios.estimation.logs import TransitionLog, load_transition_log
from scenarios.estimation.pooling import Pooling
from scenarios.estimation.synthetic import SyntheticProgramme, simulate_log, synthetic_programme

__all__ = [
    "DynamicsPosterior",
    "Pooling",
    "SyntheticProgramme",
    "TransitionLog",
    "estimate_dynamics",
    "kmeans",
    "load_transition_log",
    "simulate_log",
    "synthetic_programme",
]
