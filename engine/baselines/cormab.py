"""Baseline policies of the SEQUOIA paper, all through the domain's ActionModel.

Every policy answers ``act(states, time_to_go, rng) -> action`` with a feasible action and terminates on
every input. ``null``, ``random``, ``sampling`` and ``myopic`` ignore the Q-network; the network's own
greedy policy (``iterative DQN``) is the engine's ``greedy`` selector.
"""

from __future__ import annotations

import numpy as np

from engine.sequoia.selectors.greedy import greedy_ascent
from scenarios.cormab.instance import CoRMABInstance
from solvers.backends.registry import Backend, resolve_backend


class NullPolicy:
    """Pull nothing (or, where the feasible set forbids the empty action, the cheapest feasible one, repaired at each
    state where the domain closes some of its entries: a patrol that inspects nothing still starts where it is)."""

    name = "null"

    def __init__(self, instance: CoRMABInstance, backend: Backend = "highs") -> None:
        """``backend`` (a registered name or a solver object) finds the cheapest feasible action when needed."""
        self.instance = instance
        model = instance.action_model()
        empty = np.zeros(instance.n_actions, dtype=np.int64)
        if model.is_feasible(empty):
            self._action = empty
        else:
            sol = resolve_backend(backend).solve(model.milp(-np.ones(instance.n_actions)))
            if sol.x is None:
                raise RuntimeError(f"no feasible action for {model.name!r} ({sol.status})")
            self._action = np.round(sol.x[: instance.n_actions]).astype(np.int64)

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray:
        if self.instance.uses_unavailable(states, self._action):
            return self.instance.drop_unavailable(states, self._action)
        return self._action.copy()


class RandomPolicy:
    """A random feasible action (the domain's sampler)."""

    name = "random"

    def __init__(self, instance: CoRMABInstance) -> None:
        self.instance = instance
        self.model = instance.action_model()

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray:
        return self.instance.drop_unavailable(states, self.model.sample(rng))


class SamplingPolicy:
    """Best of K random feasible actions by one-step expected reward."""

    name = "sampling"

    def __init__(self, instance: CoRMABInstance, n_samples: int = 100) -> None:
        self.instance, self.n_samples = instance, n_samples
        self.model = instance.action_model()

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray:
        candidates = np.stack([self.model.sample(rng) for _ in range(self.n_samples)])
        candidates = self.instance.drop_unavailable(states, candidates)
        return candidates[int(np.argmax(self.instance.expected_reward(states, candidates)))]


class MyopicPolicy:
    """Exact maximiser of the one-step expected reward (a MILP; by default on a persistent HiGHS model)."""

    name = "myopic"

    def __init__(self, instance: CoRMABInstance, backend: Backend = "highs") -> None:
        """``backend``: a registered back-end name or a solver object."""
        self.instance = instance
        self.solver = resolve_backend(backend, mip_rel_gap=1e-6)

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray:
        milp = self.instance.myopic_milp(states)
        milp.col_upper[: self.instance.n_actions][self.instance.unavailable_entries(states)] = 0.0
        sol = self.solver.solve(milp, time_limit=30.0, mip_rel_gap=1e-6)
        if sol.x is None:
            raise RuntimeError("myopic MILP returned no solution")
        return np.round(sol.x[: self.instance.n_actions]).astype(np.int64)


class IterativeMyopicPolicy:
    """Greedy by one-step expected gain per unit cost, while the action stays feasible."""

    name = "iterative_myopic"

    def __init__(self, instance: CoRMABInstance) -> None:
        self.instance = instance
        self.model = instance.action_model()
        self.costs = np.maximum(instance.action_costs(), 1e-9)

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray:
        def score(actions: np.ndarray) -> np.ndarray:
            value = np.asarray(self.instance.expected_reward(states, actions), dtype=float)
            return np.where(self.instance.uses_unavailable(states, actions), -np.inf, value)

        a, _ = greedy_ascent(self.model, score, self.costs, closed=self.instance.unavailable_entries(states))
        return a


BASELINES: dict[str, type] = {
    cls.name: cls for cls in (NullPolicy, RandomPolicy, SamplingPolicy, MyopicPolicy, IterativeMyopicPolicy)
}
