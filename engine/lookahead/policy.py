"""A planner improved by one step of lookahead on a learned value: approximate policy iteration from the planner.

Q(s, a) = E[r(s, a)] + E[V(s', h - 1) | s, a], with r the instance's exact expected step reward (not
necessarily additive over arms: coverage caps, intervention responses), s' drawn from the instance's own
transition model with ``samples`` common uniforms (the same draws for every candidate and every state, so a
decision is a deterministic function of the state and comparisons between candidates are paired), and V a
network fitted to the base planner's Monte-Carlo returns-to-go (:mod:`engine.lookahead.rollouts`). With V the
planner's exact value this is one policy-improvement step from the planner: never worse in expectation.

Q is maximised over every feasible action when the feasible set is small (``enumerate_limit``), or over every
action the state leaves open where the feasible set depends on the state and its oracle lists it
(``state_enumerate_limit``: a patrol's walks from where it stands, listed once per position), else by local
search from the planner's own action over feasible one-move neighbourhoods (add, drop, swap). Training keeps the
planner itself unless the lookahead beats it by ``selection_z`` standard errors on held-out episodes (common
random numbers): the policy is never knowingly below its planner. A decision that scored every action feasible in
its state is ``optimal`` for its own Q estimate (bound = value, gap 0: the argmax is exact; the estimate is what it
maximises, not the true Q); one found by the local search is ``heuristic`` (no bound).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bandits.restless.joint_dp import expected_next, joint_states, state_index
from engine.analysis.lockstep import observation_rows
from engine.checkpoint import weights_digest
from engine.decision import Decision, check_time_limit
from engine.lookahead.candidates import all_feasible, feasible_in_state, neighbourhood
from engine.lookahead.config import LookaheadConfig
from engine.lookahead.value_network import ValueNetwork
from engine.planners.policy import PlannerPolicy
from engine.planners.prior import resolve_prior
from engine.protocols import batch_rows
from scenarios.errors import EnumerationTimeoutError, InvalidInputError
from scenarios.feasibility import EnumerableOracle
from solvers.solution import HEURISTIC, OPTIMAL

LOOKAHEAD_SELECTORS = ("lookahead", "planner")
_CELLS = 1 << 20  # next-state samples scored per block (states x candidates x samples)
TABLE_STATES = 1 << 16  # joint state spaces up to this size read V from a table (one forward pass per h)
EXACT_CELLS = 1 << 25  # exact expectation when its Q tables (actions x joint states x horizon) stay this small
STATE_SETS = 1024  # feasible sets listed per closed entries and kept (a patrol has one per node)
#: a state's open actions not listed within this many seconds count as too many to list (local search instead;
#: a J = 20 patrol lists a node's walks in 0.05-0.2 s, a J = 40 one with B = 8 took 31 s to refuse on the count)
LISTING_SECONDS = 2.0


class LookaheadPolicy:
    """A base planner, a fitted value network and the one-step lookahead between them."""

    kind = "lookahead"
    selectors = LOOKAHEAD_SELECTORS

    def __init__(
        self,
        scenario: str,
        instance,
        config: LookaheadConfig,
        value: ValueNetwork,
        seed: int = 0,
        use_planner: bool = False,
        summary: dict | None = None,
        base: PlannerPolicy | None = None,
    ) -> None:
        """``base``: the fitted base planner when the caller has it (training does), else fitted here."""
        self.scenario, self.instance, self.config, self.value = scenario, instance, config, value
        self.seed, self.use_planner = int(seed), bool(use_planner)
        self.training_summary: dict = dict(summary or {})
        self.base = base or PlannerPolicy(scenario, instance, base_planner(config.planner, instance))
        self.model = self.base.model
        self.uniforms = np.random.default_rng([self.seed, 5]).uniform(size=(config.samples, instance.n_arms))
        self.candidates = all_feasible(self.model, config.enumerate_limit)
        # the feasible set depends on the state and its oracle lists it: every action the state leaves open, per
        # set of closed entries (at most STATE_SETS cached)
        self._per_state = bool(
            self.candidates is None
            and instance.state_dependent
            and config.state_enumerate_limit > 0
            and isinstance(self.model.oracle, EnumerableOracle)
        )
        self._state_sets: dict[bytes, np.ndarray | None] = {}
        self._lists_all: bool | None = None
        counts = np.asarray(instance.arms.state_counts, dtype=np.int64)
        n_joint = float(np.prod(counts.astype(float)))
        small = n_joint <= TABLE_STATES
        self._counts = counts if small else None
        self._tables: dict[int, np.ndarray] = {}
        n_cands = len(self.candidates) if self.candidates is not None else np.inf
        cells = n_joint * instance.horizon * n_cands  # floats cached by q_table over the horizon (268 MB at most)
        self._exact = bool(config.exact_expectation and small and cells <= EXACT_CELLS)
        self._step: tuple[np.ndarray, np.ndarray] | None = None  # (reward (K, S), arm matrices): h-independent
        self._q_tables: dict[int, np.ndarray] = {}
        settings = config.to_dict()
        if not self._per_state:  # the setting changes nothing here: versions of earlier checkpoints stay the same
            settings.pop("state_enumerate_limit")
        identity = [self.base.policy_version, settings, seed, use_planner, weights_digest(value)]
        self.policy_version = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]

    # ----------------------------------------------------------------------------------- scoring
    def scores(self, states: np.ndarray, time_to_go: int, candidates: np.ndarray) -> np.ndarray:
        """Q estimates (B, K) of candidates (K, N) shared by all states, or (B, K, N), at arm states (B, J)."""
        states = np.asarray(states, dtype=np.int64)
        cands = np.broadcast_to(np.asarray(candidates, dtype=np.int64), (len(states), *np.shape(candidates)[-2:]))
        B, K = cands.shape[:2]
        out = np.empty((B, K))
        step = max(1, _CELLS // max(1, K * len(self.uniforms)))
        for lo in range(0, B, step):
            s, c = states[lo : lo + step, None, :], cands[lo : lo + step]
            q = self.instance.expected_reward(s, c)
            if time_to_go > 1:
                nxt = self.instance.transition(s[:, :, None, :], c[:, :, None, :], self.uniforms[None, None])
                q = q + self.next_values(nxt, time_to_go - 1).mean(-1)
            out[lo : lo + step] = np.where(self.instance.uses_unavailable(s, c), -np.inf, q)
        return out

    def next_values(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        """V(s', h) for next states (..., J). On a small joint state space V is tabulated once per h over every
        joint state and read by index: the same network, one forward pass per h instead of one per sample."""
        if self._counts is None:
            return self.value.values(states, time_to_go)
        table = self._tables.get(time_to_go)
        if table is None:
            table = self.value.values(joint_states(tuple(self._counts.tolist())), time_to_go)
            self._tables[time_to_go] = table
        return table[state_index(states, self._counts)]

    @property
    def exact_expectation(self) -> bool:
        """Whether decisions take E[V(s')] exactly (a small joint state space, every feasible action scored)."""
        return self._exact

    def q_table(self, time_to_go: int) -> np.ndarray:
        """(K, S) Q(s, a) = E[r(s, a)] + E[V(s', h - 1) | s, a] for every candidate and joint state, the expectation
        exact through the arms' transition matrices (-inf where an action is unavailable in the state)."""
        table = self._q_tables.get(time_to_go)
        if table is None:
            from engine.analysis.exact_dp import step_tables

            assert self._counts is not None and self.candidates is not None
            if self._step is None:
                self._step = step_tables(self.instance, self.candidates)
            reward, mats = self._step
            table = reward
            if time_to_go > 1:
                counts = tuple(self._counts.tolist())
                table = reward + expected_next(self.next_values(joint_states(counts), time_to_go - 1), mats, counts)
            self._q_tables[time_to_go] = table
        return table

    def actions(self, states: np.ndarray, time_to_go: int) -> tuple[np.ndarray, np.ndarray]:
        """The lookahead's actions (B, N) and their Q estimates (B,) at arm states (B, J)."""
        chosen, values, _ = self.choose(states, time_to_go)
        return chosen, values

    def choose(
        self, states: np.ndarray, time_to_go: int, deadline: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`actions` and, per row, whether every action feasible in the state was scored (the argmax is then
        exact for the Q estimate) rather than found by the local search. ``deadline`` (a ``perf_counter`` time):
        listing a state's open actions stops there (local search instead, the listing not cached), and so do the
        base planner's MILP and the local search's rounds."""
        states = np.atleast_2d(np.asarray(states, dtype=np.int64))
        every = np.ones(len(states), dtype=bool)
        if self._exact:
            assert self.candidates is not None and self._counts is not None
            q = self.q_table(time_to_go)[:, state_index(states, self._counts)]  # (K, B)
            best = np.argmax(q, axis=0)
            return self.candidates[best], q[best, np.arange(len(states))], every
        if self.candidates is not None:
            q = self.scores(states, time_to_go, self.candidates)
            best = np.argmax(q, axis=1)
            return self.candidates[best], q[np.arange(len(states)), best], every
        chosen = np.zeros((len(states), self.model.n_actions), dtype=np.int64)
        values = np.zeros(len(states))
        local = np.arange(len(states))
        if self._per_state:
            local, groups = self._group_by_open_set(states, deadline)
            for cands, idx in groups:
                q = self.scores(states[idx], time_to_go, cands)
                best = np.argmax(q, axis=1)
                chosen[idx], values[idx] = cands[best], q[np.arange(len(idx)), best]
        for i in local:
            chosen[i], values[i] = self._local_search(states[i], time_to_go, deadline)
        every[local] = False
        return chosen, values, every

    def _group_by_open_set(
        self, states: np.ndarray, deadline: float | None = None
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """States whose open actions are listed, grouped by their closed entries ((candidates, row indices) per
        group, each set enumerated once and cached), and the rows left to the local search (too many to list)."""
        closed = self.instance.unavailable_entries(states)
        groups: dict[bytes, list[int]] = {}
        for i, row in enumerate(closed):
            groups.setdefault(row.tobytes(), []).append(i)
        listed: list[tuple[np.ndarray, np.ndarray]] = []
        local: list[int] = []
        for key, rows in groups.items():
            cands = self._open_set(key, closed[rows[0]], deadline)
            if cands is None:
                local += rows
            else:
                listed.append((cands, np.asarray(rows)))
        return np.asarray(local, dtype=np.int64), listed

    def _open_set(self, key: bytes, closed: np.ndarray, deadline: float | None = None) -> np.ndarray | None:
        """The listed actions avoiding ``closed`` (None: too many to list, or not listed before ``deadline``),
        cached under ``key`` unless the caller's deadline stopped the listing (a later call may have the time)."""
        if key not in self._state_sets:
            left = LISTING_SECONDS if deadline is None else deadline - time.perf_counter()
            seconds = max(0.0, min(LISTING_SECONDS, left))
            try:
                listed = feasible_in_state(self.model, closed, self.config.state_enumerate_limit, seconds)
            except EnumerationTimeoutError:
                if left < LISTING_SECONDS:
                    return None
                listed = None  # too slow to list at all: as too many
            if len(self._state_sets) >= STATE_SETS:
                self._state_sets.clear()
            self._state_sets[key] = listed
        return self._state_sets[key]

    def _lists_every_state(self) -> bool:
        """Whether every joint state's open actions are listed (checked on small joint state spaces only; a state
        with too many falls back to the local search from the planner's MILP decision)."""
        if self._lists_all is None:
            self._lists_all = False
            if self._per_state and self._counts is not None:
                closed = np.unique(
                    self.instance.unavailable_entries(joint_states(tuple(self._counts.tolist()))), axis=0
                )
                self._lists_all = all(self._open_set(row.tobytes(), row) is not None for row in closed)
        return self._lists_all

    def _local_search(
        self, states: np.ndarray, time_to_go: int, deadline: float | None = None
    ) -> tuple[np.ndarray, float]:
        rng = np.random.default_rng([self.seed, time_to_go, *states.tolist()])
        limit = None if deadline is None else max(1e-3, deadline - time.perf_counter())
        current = self.base.decide(np.concatenate([states, [time_to_go]]), "mip", limit).action
        value = float(self.scores(states[None], time_to_go, current[None])[0, 0])
        for _ in range(self.config.rounds):
            if deadline is not None and time.perf_counter() > deadline:
                break
            cands = neighbourhood(self.model, current, self.config.neighbours, rng)
            q = self.scores(states[None], time_to_go, cands)[0]
            best = int(np.argmax(q))
            if q[best] <= value + 1e-9:
                break
            current, value = cands[best], float(q[best])
        return current, value

    # ----------------------------------------------------------------------------------- deciding
    def decide(self, state: object, selector: str = "lookahead", time_limit: float | None = None) -> Decision:
        """The joint action for ``state`` ([s_1..s_J, time_to_go]); ``planner`` asks the base planner."""
        _check_selector(selector)
        if selector == "planner" or self.use_planner:
            return self._planner_decision(state, time_limit, selector)
        start = time.perf_counter()
        states, ttg = self.base.observations.split_observation(state)
        a, q, every = self.choose(states[None], ttg, _deadline(start, time_limit))
        return self._decision(a[0], float(q[0]), bool(every[0]), time.perf_counter() - start)

    def decide_batch(
        self, states: object, selector: str = "lookahead", time_limit: float | None = None
    ) -> list[Decision]:
        """One decision per row of ``states`` (B, J + 1); states sharing a time to go are scored together."""
        _check_selector(selector)
        rows = batch_rows(states)
        if selector == "planner" or self.use_planner:
            return [self._planner_decision(row, time_limit, selector) for row in rows]
        start = time.perf_counter()
        deadline = _deadline(start, time_limit)
        split = [self.base.observations.split_observation(row) for row in rows]
        out: list[Decision | None] = [None] * len(rows)
        for ttg in sorted({t for _, t in split}):
            idx = [i for i, (_, t) in enumerate(split) if t == ttg]
            acts, qs, every = self.choose(np.stack([split[i][0] for i in idx]), ttg, deadline)
            for i, a, q, proven in zip(idx, acts, qs, every, strict=True):
                out[i] = self._decision(a, float(q), bool(proven), 0.0)
        seconds = (time.perf_counter() - start) / len(rows)
        decisions = [d for d in out if d is not None]
        for d in decisions:
            d.seconds = seconds
        return decisions

    @property
    def scores_every_action(self) -> bool:
        """Whether every decision scores every feasible action (the whole set, or, in every joint state, every one
        the state leaves open): the lookahead is then a function of the state alone."""
        return self.candidates is not None or self._lists_every_state()

    def vectorises(self, selector: str) -> bool:
        """Whether :meth:`decide_batch` scores a batch at once (every feasible action enumerated, or the open
        actions per group of states)."""
        if selector == "planner" or self.use_planner:
            return self.base.vectorises("mip")
        return self.candidates is not None or self._per_state

    def _decision(self, action: np.ndarray, value: float, every_scored: bool, seconds: float) -> Decision:
        """``every_scored``: every action feasible in the state was scored, so the argmax is proven (for the Q
        estimate): ``optimal`` with bound = value; else the local search's ``heuristic`` answer, no bound."""
        self.model.check(action)
        proven = every_scored and np.isfinite(value)
        return Decision(
            np.asarray(action, dtype=np.int64),
            value,
            value if proven else float("inf"),
            0.0 if proven else float("inf"),
            OPTIMAL if proven else HEURISTIC,
            seconds,
            "lookahead",
            self.policy_version,
            assignment=self.model.assignment(action),
        )

    def _planner_decision(self, state: object, time_limit: float | None, selector: str) -> Decision:
        decision = self.base.decide(state, "mip", time_limit)
        decision.policy_version = self.policy_version
        if selector != "planner":
            decision.reason = "training kept the base planner: the lookahead did not beat it on validation episodes"
        return decision

    # --------------------------------------------------------------------------------- evaluation
    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> Decision:
        """Evaluation interface (:mod:`engine.analysis.evaluation`)."""
        return self.decide(np.concatenate([states, [time_to_go]]))

    def act_batch(self, states: np.ndarray, time_to_go: np.ndarray | int, rngs: Any) -> list[Decision]:
        """Evaluation in lock step: one batch decision for every running episode."""
        return self.decide_batch(observation_rows(states, time_to_go))

    def acts_in_batches(self) -> bool:
        return self.vectorises("lookahead")

    # ---------------------------------------------------------------------------------- persisting
    def save(self, path: str | Path) -> Path:
        """A checkpoint directory: config.json (instance, settings, selection) and the value's weights."""
        from engine.checkpoint import write_checkpoint_dir

        meta = {
            "kind": self.kind,
            "scenario": self.scenario,
            "instance": self.instance.model_dump(mode="json"),
            "config": self.config.to_dict(),
            "seed": self.seed,
            "use_planner": self.use_planner,
            "training_summary": self.training_summary,
            "policy_version": self.policy_version,
        }
        return write_checkpoint_dir(path, meta, dict(self.value.state_dict()))

    @classmethod
    def load(cls, path: str | Path) -> LookaheadPolicy:
        from safetensors.torch import load_file

        from engine.checkpoint import read_checkpoint_meta
        from scenarios import load_instance

        meta = read_checkpoint_meta(path)
        if meta.get("kind") != cls.kind:
            raise InvalidInputError("path", f"{path} is not a lookahead checkpoint")
        instance: Any = load_instance(meta["scenario"], meta["instance"])
        # older checkpoints: sampled expectations, no per-state enumeration (as they were selected)
        older = {"exact_expectation": False, "state_enumerate_limit": 0}
        config = LookaheadConfig.from_dict({**older, **meta["config"]})
        if config.planner == "auto":  # saved before training stored the concrete planner: the one it had then
            planner = resolve_prior("auto", instance, saved_before_action_law=True)
            config = LookaheadConfig.from_dict({**config.to_dict(), "planner": planner})
        value = ValueNetwork(instance.arms.state_counts, instance.horizon, config.hidden)
        value.load_state_dict(load_file(str(Path(path) / "weights.safetensors")))
        return cls(
            meta["scenario"], instance, config, value, int(meta["seed"]), bool(meta["use_planner"]),
            meta.get("training_summary"),
        )  # fmt: skip


def base_planner(name: str, instance) -> str:
    """The planner ``name`` names on ``instance`` (``auto``: the DQN's auto prior: the family's measured best planner,
    else Whittle where arms are pulled one by one, else Lagrangian)."""
    return resolve_prior("auto", instance) if name == "auto" else name


def _deadline(start: float, time_limit: float | None) -> float | None:
    """The ``perf_counter`` time by which a decision started at ``start`` should be made (None: no limit)."""
    check_time_limit(time_limit)
    return None if time_limit is None else start + float(time_limit)


def _check_selector(selector: str) -> None:
    if selector not in LOOKAHEAD_SELECTORS:
        raise InvalidInputError(
            "selector", f"a lookahead policy offers {', '.join(LOOKAHEAD_SELECTORS)}; got {selector!r}"
        )
