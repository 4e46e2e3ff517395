"""The Engine facade: train a policy, save/load it, and decide."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.checkpoint import load_checkpoint, save_checkpoint, weights_digest
from engine.decision import Decision, check_time_limit
from engine.planners.batch import parse_rows
from engine.planners.prior import PlannerPrior, make_prior
from engine.protocols import Policy, batch_rows
from engine.sequoia.armwise_network import ArmwiseQNetwork
from engine.sequoia.dqn import DQNConfig, DQNTrainer, make_encoder, make_state_q
from engine.sequoia.q_network import QNetwork
from engine.sequoia.selectors import SELECTORS, load_plugins
from engine.sequoia.state_q import StateQ
from engine.sequoia.state_q_batch import StateQBatch
from scenarios import load_instance
from scenarios.errors import InvalidInputError

if TYPE_CHECKING:
    from engine.planners.policy import PlannerPolicy
    from scenarios.action_model import ActionModel


class Engine:
    """A trained Q-network for one scenario instance, maximised over its feasible set on demand.

    With ``config.prior`` Q adds the prior's linear part (a planner's objective, or the exact one-step
    reward) to the network; without a config the network is taken to be the whole Q."""

    kind = "dqn"

    def __init__(
        self,
        scenario: str,
        instance,
        network: QNetwork | ArmwiseQNetwork,
        config: DQNConfig | None = None,
        training_summary: dict | None = None,
        seed: int = 0,
    ) -> None:
        self.scenario, self.instance, self.network = scenario, instance, network
        self.config = config or DQNConfig(hidden=network.hidden, prior="none")
        self.training_summary = training_summary or {}
        self.seed = seed
        self._env = instance.make_env()
        self.model = self._env.action_model()
        self.encoder = make_encoder(instance)
        self.prior = make_prior(self.config.prior, instance)
        self.policy_version = weights_digest(network)
        self._selectors: dict[tuple, object] = {}
        self.planner: PlannerPolicy | None = None  # decides instead of the network when training kept it
        if self.training_summary.get("kept_planner_name"):  # another planner beat the trained policy: it decides
            from engine.planners.policy import PlannerPolicy

            self.planner = PlannerPolicy(scenario, instance, self.training_summary["kept_planner_name"])
        elif self.training_summary.get("kept_planner") and self.config.prior != "none":
            from engine.planners.policy import PlannerPolicy

            assert isinstance(self.prior, PlannerPrior)
            self.planner = PlannerPolicy(scenario, instance, self.prior.planner)
        elif (
            isinstance(network, ArmwiseQNetwork)
            and isinstance(self.prior, PlannerPrior)
            and self.prior.planner.structure.is_pull
        ):  # Q's argmax is the corrected planner's decision
            from engine.planners.corrected import CorrectedPlanner
            from engine.planners.policy import PlannerPolicy

            corrected = CorrectedPlanner(self.prior.planner, network, self.encoder)
            self.planner = PlannerPolicy(scenario, instance, corrected)

    @property
    def model(self) -> ActionModel:
        """The feasible set every selector respects; a model assigned here (user rows:
        ``engine.model = engine.model.with_constraints(...)``) reaches the planner that decides, if one does."""
        return self._model

    @model.setter
    def model(self, model: ActionModel) -> None:
        self._model = model
        planner = getattr(self, "planner", None)  # None while __init__ has not made it yet
        if planner is not None:
            planner.model = model

    # ----------------------------------------------------------------------------------- training
    @classmethod
    def train(cls, env, config: object | None = None, seed: int = 0, progress: bool = True) -> Policy:
        """Train a policy on ``env`` (a scenario environment from ``scenarios.make``) with the trainer registered
        for the config's type (:mod:`engine.trainers`): a :class:`DQNConfig` trains this engine, an
        ``ActorCriticConfig`` the Q-actor-critic; without a config the environment's family picks one
        (integer-box scenarios such as inventory and maze: the actor-critic)."""
        from engine import trainers

        return trainers.train(env, config, seed=seed, progress=progress)

    @classmethod
    def plan(cls, env, planner: str = "lagrangian", **options) -> PlannerPolicy:
        """A policy from a planner alone, no training (``whittle``, ``lagrangian``, ``lp_update``: see
        :mod:`engine.planners`); it decides through the same ``decide`` / ``Decision`` path and saves like an
        engine."""
        from engine.planners.policy import PlannerPolicy

        return PlannerPolicy(env.scenario, env.instance, planner, **options)

    @property
    def selectors(self) -> tuple[str, ...]:
        """The registered selectors (:data:`engine.sequoia.selectors.SELECTORS`), ``mip`` first."""
        return tuple(load_plugins())

    # ----------------------------------------------------------------------------------- deciding
    def state_q(self, state: object) -> StateQ:
        states, ttg = self._env.split_observation(state)
        closed = self.instance.unavailable_entries(states)
        return make_state_q(self.model, self.network, self.encoder, self.prior, states, ttg, closed=closed)

    def selector(self, name: str, **options):
        """The (cached) selector ``name`` built with ``options`` (e.g. ``backend="scip"``, ``tightening="lp"``)."""
        if name not in load_plugins():
            raise InvalidInputError("selector", f"unknown selector {name!r}; known: {', '.join(sorted(SELECTORS))}")
        key = (name, tuple(sorted(options.items())))
        if key not in self._selectors:
            try:
                self._selectors[key] = SELECTORS[name](**options)
            except (TypeError, ValueError) as err:
                raise InvalidInputError("options", f"selector {name!r}: {err}") from err
        return self._selectors[key]

    def decide(self, state: object, selector: str = "mip", time_limit: float | None = None, **options) -> Decision:
        """The best feasible joint action for ``state`` ([s_1..s_J, time_to_go], or the arm states alone);
        ``options`` configure the selector (mip: ``backend``, ``tightening``, ``mip_rel_gap``, ...)."""
        start = time.perf_counter()
        check_time_limit(time_limit)
        chosen = self.selector(selector, **options)
        if self.planner is not None:  # training kept the planner: its exact argmax (or its greedy ascent)
            _refuse_planner_options(options)
            decision = self.planner.decide(state, _planner_selector(selector), time_limit)
            decision.policy_version = self.policy_version
            return decision
        q = self.state_q(state)
        decision = chosen.select(q, time_limit=time_limit)
        self.model.check(decision.action)
        if q.closed is not None and np.any(decision.action[q.closed]):
            raise RuntimeError(f"selector {selector!r} returned an entry unavailable at the state")
        decision.assignment = self.model.assignment(decision.action)
        decision.policy_version = self.policy_version
        decision.seconds = time.perf_counter() - start  # the whole call, compilation and checks included
        return decision

    def decide_batch(
        self, states: object, selector: str = "mip", time_limit: float | None = None, **options
    ) -> list[Decision]:
        """One decision per state of ``states`` (a list of states, or an array with one state per row). A selector
        with ``select_batch`` (greedy) decides every row at once, each row's action the one :meth:`decide` returns."""
        rows = batch_rows(states)
        check_time_limit(time_limit)
        chosen = self.selector(selector, **options)
        if self.planner is not None:  # training kept the planner: its batch (vectorised where the planner's is)
            _refuse_planner_options(options)
            planner_selector = _planner_selector(selector)
            kept = self.planner.decide_batch(rows, planner_selector, time_limit)
            for d in kept:
                d.policy_version = self.policy_version
            return kept
        if len(rows) < 2 or not hasattr(chosen, "select_batch") or not isinstance(self.network, QNetwork):
            return [self.decide(row, selector, time_limit, **options) for row in rows]
        start = time.perf_counter()
        arm_states, ttg = parse_rows(self.instance, self._env, rows)
        closed = self.instance.unavailable_entries(arm_states)
        q = StateQBatch.of(self.model, self.network, self.encoder, self.prior, arm_states, ttg, closed)
        decisions = chosen.select_batch(q, time_limit=time_limit)
        if closed.any() and any(np.any(d.action[c]) for d, c in zip(decisions, closed, strict=True)):
            raise RuntimeError(f"selector {selector!r} returned an entry unavailable at its state")
        assignments: dict[bytes, dict] = {}
        for d in decisions:  # one feasibility check and certificate per distinct action
            key = np.asarray(d.action, dtype=np.int8).tobytes()
            if key not in assignments:
                self.model.check(d.action)
                assignments[key] = self.model.assignment(d.action)
            d.assignment, d.policy_version = assignments[key], self.policy_version
        seconds = (time.perf_counter() - start) / len(rows)
        for d in decisions:
            d.seconds = seconds
        return decisions

    def vectorises(self, selector: str) -> bool:
        """Whether :meth:`decide_batch` decides this selector's batches at once rather than state by state."""
        if self.planner is not None:
            return self.planner.vectorises(_planner_selector(selector))
        if selector not in load_plugins():
            return False
        return hasattr(self.selector(selector), "select_batch") and isinstance(self.network, QNetwork)

    # ---------------------------------------------------------------------------------- persisting
    def save(self, path: str | Path) -> Path:
        return save_checkpoint(
            path,
            self.network,
            {
                "kind": self.kind,
                "scenario": self.scenario,
                "instance": self.instance.model_dump(mode="json"),
                "training": self.config.to_dict(),
                "training_summary": _summary_head(self.training_summary),
                "seed": self.seed,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load a checkpoint directory written by any policy's ``save``, by the kind in its ``config.json``
        (:mod:`engine.policy_kinds`: this engine, ``ActorCriticAgent``, ``PlannerPolicy``, ...)."""
        from engine import policy_kinds

        return policy_kinds.load(path)

    @classmethod
    def load_dqn(cls, path: str | Path) -> Engine:
        """Load a DQN checkpoint written by :meth:`save`."""
        net, meta = load_checkpoint(path)
        instance = load_instance(meta["scenario"], meta["instance"])
        training = dict(meta.get("training", {}))
        if "prior" not in training and "reward_prior" not in training:  # checkpoints before any prior: none
            training["prior"] = "none"
        if training.get("prior") == "auto":  # saved before training stored the concrete prior: the one it had then
            from engine.planners.prior import resolve_prior

            training["prior"] = resolve_prior("auto", instance, saved_before_action_law=True)
        return cls(
            meta["scenario"],
            instance,
            net,
            DQNConfig.from_dict(training),
            meta.get("training_summary", {}),
            int(meta.get("seed", 0)),
        )


def train_dqn(env, config: DQNConfig, seed: int = 0, progress: bool = True) -> Engine:
    """The DQN trainer of :data:`engine.trainers.TRAINERS`: SEQUOIA-style DQN on the env's instance."""
    trainer = DQNTrainer(env.instance, config, seed=seed)
    net = trainer.train(progress=progress)
    return Engine(env.scenario, env.instance, net, trainer.config, trainer.summary.to_dict(), seed)


def _summary_head(summary: dict) -> dict:
    """The training summary without the long per-step loss trace."""
    return {k: v for k, v in summary.items() if k != "losses"}


def _planner_selector(selector: str) -> str:
    """The kept planner's selector for an engine selector: greedy for the heuristic ones, its exact MILP else."""
    return "greedy" if selector in ("greedy", "sampling") else "mip"


def _refuse_planner_options(options: dict) -> None:
    """An engine whose training kept its planner decides with the planner's own settings: selector options would
    be dropped, so they are refused, naming the first."""
    if options:
        raise InvalidInputError(
            sorted(options)[0],
            "this engine decides with its planner (training kept it), which takes no selector options",
        )
