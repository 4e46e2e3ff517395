"""Errors raised for bad input and infeasible actions; each names the offending field or constraint."""

from __future__ import annotations


class InvalidInputError(ValueError):
    """Malformed input: names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class InfeasibleActionError(ValueError):
    """An action that violates the feasible set; ``violations`` names each violated constraint."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = list(violations)
        self.field = "action"
        super().__init__("infeasible action, violated constraints: " + ", ".join(self.violations))


class EnumerationTimeoutError(ValueError):
    """Listing a feasible set was refused because it passed its time limit (not because the set is too large)."""
