"""A planner as a policy: decides through the same ``decide`` / ``Decision`` path as a trained engine.

``Engine.plan(env, planner="lagrangian")`` builds one; ``save`` writes a checkpoint directory (config.json with
the instance and the planner's options; an empty weights file) that ``Engine.load`` and the REST service read
like any other policy.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis.lockstep import observation_rows
from engine.decision import Decision, check_time_limit
from engine.planners import make_planner
from engine.planners.base import Planner, PlannerTimeLimitError
from engine.planners.batch import batch_oracle, decide_batch_vectorised
from engine.planners.lp_update import LPUpdatePlanner
from engine.planners.objective import penalised_gains
from engine.planners.reduction import ArmReduction, ClassCounts, CountCertificate, InterchangeableArms
from engine.protocols import batch_rows
from engine.sequoia.selectors.greedy import greedy_ascent
from scenarios.cormab.env import CoRMABEnv
from scenarios.errors import InvalidInputError
from solvers.backends.registry import Backend, resolve_backend
from solvers.oracles import LinearOracle, oracle_for
from solvers.solution import HEURISTIC, OPTIMAL, TIME_LIMIT, relative_gap

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel

#: ``reduce`` values besides true and false (see :class:`PlannerPolicy`)
REDUCE_MODES = ("bounds", "template")
#: the settings of ``PlannerPolicy(scenario, instance, planner)``: a policy with others has another version
DEFAULT_SETTINGS = {"mip_rel_gap": 1e-6, "time_limit": 10.0, "reduce": True, "backend": "highs"}

#: HiGHS options for the reduced (class-count) decision MILPs (other back-ends take none)
REDUCED_HIGHS_OPTIONS = {"presolve": "off", "mip_heuristic_run_feasibility_jump": False}

#: structures whose oracle decides planners without interchangeable classes (routing's branch and bound calls the
#: walk oracle per node: its MILP keeps deciding, with a time limit and a certified gap)
PLANNER_ORACLES = ("budget", "capacity", "scheduling")

#: selectors a planner offers: the exact MILP over the feasible set, or greedy ascent on the planner's objective
PLANNER_SELECTORS = ("mip", "greedy", "auto")


class PlannerPolicy:
    """A fitted planner on one scenario instance, maximised over the feasible set on demand."""

    kind = "planner"
    selectors = PLANNER_SELECTORS

    def __init__(
        self,
        scenario: str,
        instance,
        planner: str | Planner = "lagrangian",
        mip_rel_gap: float = 1e-6,
        time_limit: float = 10.0,
        reduce: bool | str = True,
        backend: Backend = "highs",
        **options: Any,
    ) -> None:
        """``reduce``: solve the decision MILP over the dominance reduction of :mod:`engine.planners.reduction`
        when the instance offers interchangeable arms (exact: same optimum); ``"bounds"`` fixes the dominated arms
        by column bounds in the full MILP instead, ``"template"`` uses the domain's rows over the kept arms even
        when the instance offers compact class-count rows; False never reduces. ``backend`` solves the decision
        MILPs: a registered back-end name (:data:`solvers.backends.registry.BACKENDS`) or a solver object."""
        _check_settings(mip_rel_gap, time_limit, reduce)
        if isinstance(planner, Planner) and options:
            raise InvalidInputError(
                sorted(options)[0], "planner options apply to a planner given by name, not to a built planner"
            )
        self.scenario, self.instance = scenario, instance
        self.planner = planner if isinstance(planner, Planner) else make_planner(planner, instance, **options)
        self.mip_rel_gap, self.time_limit = float(mip_rel_gap), float(time_limit)
        self._env = _Observations(instance)
        self.backend = backend
        try:
            self._solver = resolve_backend(backend, mip_rel_gap=self.mip_rel_gap)
        except (TypeError, ValueError) as err:  # an unknown name, an option the back-end refuses
            raise InvalidInputError("backend", str(err)) from err
        self.reduce = reduce
        self._reduction: ArmReduction | None = None
        #: (model uid, its vectorised batch oracle or None), see :func:`engine.planners.batch.batch_oracle`
        self.batch_oracle_cache: tuple[int, Any] | None = None
        if (
            reduce
            and _linear_planner(self.planner)
            and isinstance(instance, InterchangeableArms)
            and self.model.downward_closed
            and not getattr(instance, "constraints", None)  # the classes ignore the user's blocks
        ):
            counts = instance.class_count_rows() if reduce != "template" and isinstance(instance, ClassCounts) else None
            self._reduction = ArmReduction(self.model, *instance.interchangeable_classes(), count_rows=counts)
            if counts is not None:
                # small, J-independent models: HiGHS's presolve and feasibility jump cost more than they save
                # (and wake its worker threads: 2 ms of CPU became 20-50 ms of wall time on a loaded machine)
                self._solver = resolve_backend(
                    backend, mip_rel_gap=self.mip_rel_gap, highs_args={"options": REDUCED_HIGHS_OPTIONS}
                )
        # no interchangeable classes: an exact combinatorial oracle where the domain's structure admits one
        self._oracle: LinearOracle | None = None
        if self._reduction is None and reduce and _linear_planner(self.planner):
            structure = self.model.structure
            if structure is not None and structure.kind in PLANNER_ORACLES:
                self._oracle = oracle_for(self.model)
        self.training_summary: dict = {}
        identity: dict[str, Any] = {
            "scenario": scenario,
            "instance": instance.model_dump(mode="json"),
            "planner": self.planner.config(),
        }
        settings = self.settings()
        if settings != DEFAULT_SETTINGS:  # versions of policies with the default settings stay what they were
            identity["settings"] = settings
        blob = json.dumps(identity, sort_keys=True)
        self.policy_version = hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return self.planner.name

    def settings(self) -> dict[str, Any]:
        """The decision settings that can change a decision (part of the policy version when not the defaults)."""
        backend = self.backend if isinstance(self.backend, str) else type(self.backend).__name__
        return {
            "mip_rel_gap": self.mip_rel_gap,
            "time_limit": self.time_limit,
            "reduce": self.reduce,
            "backend": backend,
        }

    @property
    def model(self) -> ActionModel:
        """The feasible set every decision respects: the planner's own, so a model with user rows assigned here
        (``policy.model = policy.model.with_constraints(...)``) reaches the planner's MILP too."""
        return self.planner.model

    @model.setter
    def model(self, model: ActionModel) -> None:
        self.planner.model = model

    # ----------------------------------------------------------------------------------- deciding
    def decide(self, state: object, selector: str = "mip", time_limit: float | None = None) -> Decision:
        """The planner's joint action for ``state`` ([s_1..s_J, time_to_go], or the arm states alone)."""
        _check_arguments(selector, time_limit)
        start = time.perf_counter()
        states, ttg = self._env.split_observation(state)
        limit = self.time_limit if time_limit is None else float(time_limit)
        self.planner.deadline = start + limit  # bounds a planner's own per-decision solve (LP-update's LP)
        try:
            decision = self._greedy(states, ttg) if selector == "greedy" else self._mip(states, ttg, time_limit)
        except PlannerTimeLimitError:
            decision = self._myopic_fallback(states, ttg, selector)
        finally:
            self.planner.deadline = None
        decision.seconds = time.perf_counter() - start
        self.model.check(decision.action)
        self.instance.check_available(states, decision.action)
        decision.assignment = self.model.assignment(decision.action)
        decision.policy_version = self.policy_version
        return decision

    def decide_batch(self, states: object, selector: str = "mip", time_limit: float | None = None) -> list[Decision]:
        """One decision per row of ``states`` (B, J + 1) or (B, J): a list of states or a 2-D array. Exact
        decisions on budget and capacity structures are vectorised over the batch (:mod:`engine.planners.batch`)."""
        _check_arguments(selector, time_limit)
        rows = batch_rows(states)
        if selector == "mip" and len(rows) > 1:
            oracle = batch_oracle(self)
            if oracle is not None:
                decisions = decide_batch_vectorised(self, oracle, rows, time_limit)
                if decisions is not None:
                    return decisions
        return [self.decide(row, selector, time_limit) for row in rows]

    def vectorises(self, selector: str) -> bool:
        """Whether :meth:`decide_batch` decides this selector's batches at once rather than state by state."""
        return selector == "mip" and batch_oracle(self) is not None

    @property
    def observations(self) -> _Observations:
        """Checks and splits observations of this instance."""
        return self._env

    def linear_objective(self) -> bool:
        """Whether the planner's decision objective is linear in the action (its table's gains)."""
        return _linear_planner(self.planner)

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> Decision:
        """Evaluation interface (:mod:`engine.analysis.evaluation`)."""
        return self.decide(np.concatenate([states, [time_to_go]]))

    def act_batch(self, states: np.ndarray, time_to_go: np.ndarray | int, rngs: Any) -> list[Decision]:
        """Evaluation in lock step (:mod:`engine.analysis.lockstep`): :meth:`act` for every row of ``states``."""
        return self.decide_batch(observation_rows(states, time_to_go))

    def acts_in_batches(self) -> bool:
        """Whether :meth:`act_batch` decides its batches at once (else evaluation runs episode by episode)."""
        return self.vectorises("mip")

    def _mip(self, states: np.ndarray, ttg: int, time_limit: float | None) -> Decision:
        limit = self.time_limit if time_limit is None else float(time_limit)
        n = self.model.n_actions
        reduction = (
            self._reduction if self._reduction is not None and self._reduction.model is self.model else None
        )  # a model swapped after construction (e.g. user constraints) voids the reduction
        gains, offset = np.zeros(0), 0.0  # the planner's per-arm gains, set (and used) with an oracle or reduction
        oracle = (
            self._oracle if self._oracle is not None and getattr(self._oracle, "model", None) is self.model else None
        )
        if reduction is None and oracle is not None:
            table = self.planner.fit().table(states, ttg)
            gains, offset = table[:, 1] - table[:, 0], float(table[:, 0].sum())
            penalised, closed = penalised_gains(gains)
            if np.all(np.isfinite(table[:, 0])) and (not closed.any() or self.model.downward_closed):
                decision = _oracle_decision(oracle, penalised, offset, limit, n, self.model.structure)
                if not np.any(decision.action[closed]):
                    return decision
        if reduction is not None:
            table = self.planner.fit().table(states, ttg)
            gains, offset = table[:, 1] - table[:, 0], float(table[:, 0].sum())
            if not np.all(np.isfinite(table[:, 0])):
                reduction = None
            elif not np.all(np.isfinite(gains)):  # arms that cannot be pulled in their states
                if self.model.downward_closed:  # a negative gain is never kept by the reduction: never pulled
                    gains = penalised_gains(gains)[0]
                else:
                    reduction = None
        if reduction is not None and self.reduce != "bounds":
            a, sol = reduction.solve(self._solver, gains, offset, limit, self.mip_rel_gap)
            if a is not None and sol.x is not None and reduction.counts and isinstance(self.instance, CountCertificate):
                aux = self.instance.count_certificate(a, reduction.count_aux(sol.x))
                if aux is not None:
                    self.model.feasible_with(a, aux)  # remembers a verified certificate: no oracle search
        else:
            milp = self.planner.milp(states, ttg)
            if reduction is not None:
                milp = reduction.bounds_milp(gains, offset, milp)
            sol = self._solver.solve(milp, time_limit=limit, mip_rel_gap=self.mip_rel_gap)
            a = None if sol.x is None else np.round(sol.x[:n]).astype(np.int64)
        bound = float(sol.bound)  # with no incumbent at the limit, a proven dual bound where the back-end has one
        if reduction is not None:  # offset + the kept positive gains bounds the objective without a solve
            trivial = reduction.trivial_bound(gains, offset)
            bound = min(bound, trivial) if np.isfinite(bound) else trivial
        elif not np.isfinite(bound) and _table_objective(self.planner):  # each arm at its best value
            bound = float(np.max(self.planner.fit().table(states, ttg), axis=1).sum())
        if a is not None and self.model.is_feasible(a):
            # "optimal" only when HiGHS proved the incumbent within mip_rel_gap; else time_limit with bound, gap
            if sol.status == OPTIMAL:
                return Decision(a, float(sol.objective), float(sol.bound), float(sol.gap), OPTIMAL, sol.seconds, "mip")
            bound = max(bound, float(sol.objective))
            return Decision(
                a,
                float(sol.objective),
                bound,
                relative_gap(float(sol.objective), bound),
                TIME_LIMIT,
                sol.seconds,
                "mip",
            )
        if reduction is not None:  # the kept arms greedily: fast at any J
            start = time.perf_counter()
            a = reduction.greedy(gains)
            fallback = Decision(
                a,
                float(gains @ a + offset),
                float("inf"),
                float("inf"),
                HEURISTIC,
                time.perf_counter() - start,
                "greedy",
            )
        else:
            fallback = self._greedy(states, ttg)
        if np.isfinite(bound):  # the MILP's bound still certifies the planner objective
            fallback.bound = max(bound, fallback.value)
            fallback.gap = relative_gap(fallback.value, fallback.bound)
        return fallback

    def _myopic_fallback(self, states: np.ndarray, ttg: int, selector: str) -> Decision:
        """The planner's objective could not be computed within the time limit (LP-update's LP did not finish):
        the greedy ascent of the expected step reward, flagged ``time_limit`` with no value or bound."""
        start = time.perf_counter()
        closed = self.instance.unavailable_entries(states)
        a, _ = greedy_ascent(
            self.model, lambda acts: self.instance.expected_reward(states[None, :], acts), closed=closed
        )
        decision = Decision(
            a, float("nan"), float("inf"), float("inf"), TIME_LIMIT, time.perf_counter() - start, selector
        )
        decision.reason = (
            f"the {self.name} planner's solve did not finish within the time limit: greedy on the step reward"
        )
        return decision

    def _greedy(self, states: np.ndarray, ttg: int) -> Decision:
        start = time.perf_counter()
        closed = self.instance.unavailable_entries(states)
        a, value = greedy_ascent(self.model, lambda acts: self.planner.score(states, ttg, acts), closed=closed)
        return Decision(a, float(value), float("inf"), float("inf"), HEURISTIC, time.perf_counter() - start, "greedy")

    # ---------------------------------------------------------------------------------- persisting
    def save(self, path: str | Path) -> Path:
        from engine.checkpoint import write_checkpoint_dir

        return write_checkpoint_dir(
            path,
            {
                "kind": self.kind,
                "scenario": self.scenario,
                "instance": self.instance.model_dump(mode="json"),
                "planner": self.planner.config(),
                "mip_rel_gap": self.mip_rel_gap,
                "time_limit": self.time_limit,
                "backend": self.backend if isinstance(self.backend, str) else "highs",  # a solver object: default
                "reduce": self.reduce,
                "policy_version": self.policy_version,
            },
            {},
        )

    @classmethod
    def from_meta(cls, meta: dict) -> PlannerPolicy:
        from scenarios import load_instance

        instance = load_instance(meta["scenario"], meta["instance"])
        options = dict(meta["planner"])
        name = options.pop("name")
        return cls(
            meta["scenario"],
            instance,
            name,
            float(meta.get("mip_rel_gap", 1e-6)),
            float(meta.get("time_limit", 10.0)),
            reduce=meta.get("reduce", True),
            backend=str(meta.get("backend", "highs")),
            **options,
        )

    @classmethod
    def load(cls, path: str | Path) -> PlannerPolicy:
        from engine.checkpoint import read_checkpoint_meta

        meta = read_checkpoint_meta(path)
        if meta.get("kind") != cls.kind:
            raise InvalidInputError("path", f"{path} is not a planner checkpoint")
        return cls.from_meta(meta)


class _Observations(CoRMABEnv):
    """The environment's observation checks (``split_observation``) without building a second ActionModel."""

    def __init__(self, instance) -> None:
        self.instance = instance


def _check_settings(mip_rel_gap: object, time_limit: object, reduce: object) -> None:
    """Refuse decision settings a planner policy cannot use, naming the field."""
    if isinstance(mip_rel_gap, bool) or not isinstance(mip_rel_gap, numbers.Real) or not 0 <= float(mip_rel_gap) <= 1:
        raise InvalidInputError("mip_rel_gap", f"must be a number in [0, 1], got {mip_rel_gap!r}")
    check_time_limit(time_limit)
    if time_limit is None:
        raise InvalidInputError("time_limit", "must be a positive number of seconds, got None")
    if not (isinstance(reduce, bool) or reduce in REDUCE_MODES):
        raise InvalidInputError("reduce", f"must be true, false or one of {', '.join(REDUCE_MODES)}; got {reduce!r}")


def _check_arguments(selector: str, time_limit: float | None) -> None:
    if selector not in PLANNER_SELECTORS:
        raise InvalidInputError("selector", f"a planner offers {', '.join(PLANNER_SELECTORS)}; got {selector!r}")
    check_time_limit(time_limit)


def _oracle_decision(
    oracle: LinearOracle, gains: np.ndarray, offset: float, limit: float, n: int, structure
) -> Decision:
    """The exact argmax of ``gains @ a + offset`` by the domain's combinatorial oracle (``optimal``, or
    ``time_limit`` with the oracle's bound)."""
    sol = oracle.maximise(gains, offset, time_limit=limit)
    a = np.round(np.asarray(sol.x)[:n]).astype(np.int64)
    kind = getattr(structure, "kind", "?")
    decision = Decision(a, float(sol.objective), float(sol.bound), float(sol.gap), sol.status, sol.seconds, "mip")
    decision.reason = f"exact {kind} oracle"
    return decision


def _table_objective(planner: Planner) -> bool:
    """Whether the planner's decision MILP maximises the sum of its table's entries over the domain's own rows."""
    return type(planner).milp is Planner.milp or (planner.structure.is_pull and isinstance(planner, LPUpdatePlanner))


def _linear_planner(planner: Planner) -> bool:
    """Whether the planner's decision MILP is the linear objective of its table over the domain's own rows."""
    return planner.structure.is_pull and _table_objective(planner)
