"""Estimating restless-arm dynamics from logged transitions: logs, Dirichlet posteriors, pooling, arms."""

from __future__ import annotations

from scenarios.estimation.dirichlet import DynamicsPosterior, estimate_dynamics
from scenarios.estimation.kmeans import kmeans
from scenarios.estimation.logs import TransitionLog, load_transition_log
from scenarios.estimation.pooling import Pooling
from scenarios.estimation.synthetic import SyntheticProgramme, simulate_log, synthetic_programme
from scenarios.estimation.to_arms import PosteriorArms, mean_arms, sample_arms

__all__ = [
    "DynamicsPosterior",
    "Pooling",
    "PosteriorArms",
    "SyntheticProgramme",
    "TransitionLog",
    "estimate_dynamics",
    "kmeans",
    "load_transition_log",
    "mean_arms",
    "sample_arms",
    "simulate_log",
    "synthetic_programme",
]
