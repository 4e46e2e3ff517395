"""A planner as a policy: decides through the same ``decide`` / ``Decision`` path as a trained engine.

``Engine.plan(env, planner="lagrangian")`` builds one; ``save`` writes a checkpoint directory (config.json with
the instance and the planner's options; an empty weights file) that ``Engine.load`` and the REST service read
like any other policy.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.decision import Decision
from engine.planners import make_planner
from engine.planners.base import Planner
from engine.selectors.greedy import greedy_ascent
from scenarios.errors import InvalidInputError
from solvers.highs_backend import HighsSolver
from solvers.solution import HEURISTIC, OPTIMAL

#: selectors a planner offers: the exact MILP over the feasible set, or greedy ascent on the planner's objective
PLANNER_SELECTORS = ("mip", "greedy", "auto")


class PlannerPolicy:
    """A fitted planner on one scenario instance, maximised over the feasible set on demand."""

    kind = "planner"
    selectors = PLANNER_SELECTORS

    def __init__(self, scenario: str, instance, planner: str | Planner = "lagrangian", mip_rel_gap: float = 1e-6,
                 time_limit: float = 10.0, **options: Any) -> None:
        self.scenario, self.instance = scenario, instance
        self.planner = planner if isinstance(planner, Planner) else make_planner(planner, instance, **options)
        self.mip_rel_gap, self.time_limit = float(mip_rel_gap), float(time_limit)
        self._env = instance.make_env()
        self.model = self.planner.model
        self._solver = HighsSolver(mip_rel_gap=self.mip_rel_gap)
        self.training_summary: dict = {}
        blob = json.dumps({"scenario": scenario, "instance": instance.model_dump(mode="json"),
                           "planner": self.planner.config()}, sort_keys=True)
        self.policy_version = hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return self.planner.name

    # ----------------------------------------------------------------------------------- deciding
    def decide(self, state: object, selector: str = "mip", time_limit: float | None = None) -> Decision:
        """The planner's joint action for ``state`` ([s_1..s_J, time_to_go], or the arm states alone)."""
        if selector not in PLANNER_SELECTORS:
            raise InvalidInputError("selector", f"a planner offers {', '.join(PLANNER_SELECTORS)}; got {selector!r}")
        if time_limit is not None and (not np.isfinite(time_limit) or time_limit <= 0):
            raise InvalidInputError("time_limit", "must be a positive number of seconds")
        start = time.perf_counter()
        states, ttg = self._env.split_observation(state)
        decision = self._greedy(states, ttg) if selector == "greedy" else self._mip(states, ttg, time_limit)
        decision.seconds = time.perf_counter() - start
        self.model.check(decision.action)
        decision.policy_version = self.policy_version
        return decision

    def decide_batch(self, states: object, selector: str = "mip", time_limit: float | None = None) -> list[Decision]:
        """One decision per row of ``states`` (B, J + 1) or (B, J)."""
        rows = np.asarray(states, dtype=object)
        if rows.ndim != 2:
            raise InvalidInputError("states", f"expected a list of states, got shape {rows.shape}")
        return [self.decide(row, selector, time_limit) for row in rows]

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> Decision:
        """Evaluation interface (:mod:`engine.evaluation`)."""
        return self.decide(np.concatenate([states, [time_to_go]]))

    def _mip(self, states: np.ndarray, ttg: int, time_limit: float | None) -> Decision:
        milp = self.planner.milp(states, ttg)
        limit = self.time_limit if time_limit is None else float(time_limit)
        sol = self._solver.solve(milp, time_limit=limit, mip_rel_gap=self.mip_rel_gap)
        n = self.model.n_actions
        if sol.x is not None:
            a = np.round(sol.x[:n]).astype(np.int64)
            if self.model.is_feasible(a):
                status = OPTIMAL if sol.status == OPTIMAL else sol.status
                return Decision(a, float(sol.objective), float(sol.bound), float(sol.gap), status, sol.seconds, "mip")
        fallback = self._greedy(states, ttg)
        fallback.bound = float(sol.bound)  # the MILP's bound still certifies the planner objective
        return fallback

    def _greedy(self, states: np.ndarray, ttg: int) -> Decision:
        start = time.perf_counter()
        a, value = greedy_ascent(self.model, lambda acts: self.planner.score(states, ttg, acts))
        return Decision(a, float(value), float("inf"), float("inf"), HEURISTIC, time.perf_counter() - start,
                        "greedy")

    # ---------------------------------------------------------------------------------- persisting
    def save(self, path: str | Path) -> Path:
        from engine.checkpoint import write_checkpoint_dir

        return write_checkpoint_dir(path, {
            "kind": self.kind, "scenario": self.scenario, "instance": self.instance.model_dump(mode="json"),
            "planner": self.planner.config(), "mip_rel_gap": self.mip_rel_gap, "time_limit": self.time_limit,
            "policy_version": self.policy_version,
        }, {})

    @classmethod
    def from_meta(cls, meta: dict) -> PlannerPolicy:
        from scenarios import load_instance

        instance = load_instance(meta["scenario"], meta["instance"])
        options = dict(meta["planner"])
        name = options.pop("name")
        return cls(meta["scenario"], instance, name, float(meta.get("mip_rel_gap", 1e-6)),
                   float(meta.get("time_limit", 10.0)), **options)

    @classmethod
    def load(cls, path: str | Path) -> PlannerPolicy:
        from engine.checkpoint import read_checkpoint_meta

        meta = read_checkpoint_meta(path)
        if meta.get("kind") != cls.kind:
            raise InvalidInputError("path", f"{path} is not a planner checkpoint")
        return cls.from_meta(meta)
