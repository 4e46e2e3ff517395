"""Allocation families: restless arms coupled by a feasible set over pulls or interventions (coRMAB)."""
