"""Experiments: seeded sweeps, executors (local processes, Ray), reports, plots and the notebook walkthrough."""
