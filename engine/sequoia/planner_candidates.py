"""The final choice between the trained policy and the planners, on fresh episodes.

Snapshot selection (:mod:`engine.sequoia.dqn`) picks the best snapshot on the validation episodes. That pick is
the maximum of several noisy scores, so on those same episodes it looks better than it is (the winner's curse):
a snapshot that is only as good as its planner beats it there by chance, and another planner that is truly
ahead fails to beat it there. So the last decision is taken on ``confirmation_episodes`` *fresh* episodes
(common random numbers across the policies compared):

* the planners (the prior's own planner and every candidate of ``DQNConfig.planner_candidates``) are measured;
  a candidate replaces the prior's planner when its paired gain over it exceeds ``planner_switch_z`` standard
  errors (default 1: moderate evidence, so that a planner that is only as good, e.g. LP-update at 100x the
  decision time, does not win by noise), the best such candidate by mean; without a prior planner the best
  mean wins (``"auto"`` lists every built-in planner that fits the instance, up to a size per planner);
* a trained network decides only when its paired gain over that best planner exceeds ``selection_z`` standard
  errors; otherwise the best planner decides.

While that contest between planners is close (another planner ahead on the mean but not yet by
``planner_switch_z`` standard errors, a chosen candidate while another is also ahead of the prior's planner, or a
chosen candidate less than :data:`SETTLED_Z` standard errors ahead of another),
every contender plays as many again fresh episodes, up to ``confirmation_max_episodes`` (at J = 100 scheduling,
Lagrangian and LP-update both beat Whittle and the 20 episodes picked the one 0.3% behind).

With ``confirmation_episodes=0`` the validation episodes serve (the former behaviour).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis.evaluation import evaluate
from scenarios.errors import InvalidInputError

if TYPE_CHECKING:
    from engine.sequoia.dqn import DQNTrainer

#: ``planner_candidates`` token: every built-in planner that fits the instance, except the prior's own
AUTO = "auto"
#: built-in planners ``auto`` tries, in order, with the most arms it tries each at (a planner whose fit refuses
#: the instance is skipped). LP-update solves one occupancy LP per decision (warm-started: about 0.5-1 s at J = 100
#: capacity, so the 400 decisions of 20 confirmation episodes take minutes); the Lagrangian fit solves one (it does
#: not finish at J = 1,000 on the worker domains). Name planners explicitly to measure them beyond.
AUTO_PLANNERS = {"whittle": None, "lagrangian": 200, "lp_update": 100}
#: the lead (in standard errors of the paired difference) at which a choice between two candidate planners is
#: settled; below it the final choice plays more episodes. Where both candidates are ahead of the prior's planner
#: the contest plays every episode regardless (J = 100 scheduling seed 1: Lagrangian's lead of more than 2
#: standard errors on 20 fresh episodes was reversed on the 20 evaluation episodes)
SETTLED_Z = 2.0
#: above this many arms ``auto`` adds no candidate at all
AUTO_MAX_ARMS = max(n for n in AUTO_PLANNERS.values() if n is not None)


def check_planner_candidates(names: Sequence[str]) -> None:
    """Unknown planner names fail before training, naming the field (not after an hour of it)."""
    from engine.planners import PLANNERS, load_plugins

    load_plugins()
    unknown = [name for name in names if name not in PLANNERS and name != AUTO]
    if unknown:
        raise InvalidInputError(
            "planner_candidates",
            f"unknown planner {unknown[0]!r}; known: {', '.join(sorted(PLANNERS))} or {AUTO!r}",
        )


def resolve_candidates(
    names: Sequence[str], instance, prior_name: str | None, fitted: dict[str, Any] | None = None
) -> list[str]:
    """The concrete candidate list: ``auto`` expanded (the planners that apply to and fit the instance, each up to
    its :data:`AUTO_PLANNERS` size), the prior's own planner and repeats removed, order kept. The planners fitted
    on the way are stored in ``fitted`` (by name) for the contest to reuse."""
    from engine.planners import PLANNERS, make_planner

    fitted = {} if fitted is None else fitted
    out: list[str] = []
    for name in names:
        if name != AUTO:
            out.append(name)
            continue
        if instance.n_arms > AUTO_MAX_ARMS:
            continue
        for built_in, max_arms in AUTO_PLANNERS.items():
            if built_in == prior_name or built_in in out or (max_arms is not None and instance.n_arms > max_arms):
                continue
            if not PLANNERS[built_in].applies(instance):  # e.g. Whittle on a domain whose actions are not arm pulls
                continue
            try:
                fitted[built_in] = make_planner(built_in, instance)
            except InvalidInputError:  # its fit refused the instance
                continue
            out.append(built_in)
    return [name for i, name in enumerate(out) if name != prior_name and name not in out[:i]]


def significant_gain(diff: np.ndarray, selection_z: float) -> bool:
    """Whether the paired differences ``diff`` (candidate - incumbent, one per episode) have a mean above
    ``selection_z`` standard errors (never with fewer than two episodes)."""
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    return bool(diff.mean() > selection_z * se)


def planner_returns(scenario: str, instance, planner, seeds: Sequence[int] | np.ndarray) -> np.ndarray:
    """Expected return of the planner (a name or a fitted planner) on one episode per seed."""
    from engine.planners.policy import PlannerPolicy

    run = evaluate(
        instance, {"p": PlannerPolicy(scenario, instance, planner)}, episode_seeds=list(seeds), progress=False
    )
    return np.asarray(run.methods["p"].expected, dtype=float)


@dataclass
class FinalChoice:
    """Who decides after training: ``"network"``, ``"prior"`` (the prior's planner) or a candidate's name, and
    every policy's mean return on the ``episodes`` episodes that chose (``means``; network, prior, candidates)."""

    winner: str
    means: dict[str, float] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)
    episodes: int = 0


def final_choice(
    network: Callable[[np.ndarray], np.ndarray] | None,
    prior: Callable[[np.ndarray], np.ndarray] | None,
    candidates: Sequence[str],
    measure: Callable[[str, np.ndarray], np.ndarray],
    seeds: np.ndarray,
    selection_z: float,
    planner_switch_z: float = 1.0,
    more_seeds: Callable[[int], np.ndarray] | None = None,
    max_episodes: int = 0,
) -> FinalChoice:
    """Choose on ``seeds``: ``network`` / ``prior`` map seeds to the trained network's / the prior planner's
    returns (None: not a contender; the network is None when snapshot selection already kept the planner),
    ``measure(name, seeds)`` a candidate's. The best planner (the prior's unless a candidate beats it by
    ``planner_switch_z`` standard errors) wins unless the network beats it by ``selection_z`` standard errors.

    While the planners' contest is unsettled (:func:`planners_unsettled`) and fewer than ``max_episodes`` were
    played, every contender is measured on as many again fresh episodes (``more_seeds(n)``) and the choice is
    taken again on all of them."""
    if prior is None and not candidates:
        return FinalChoice("network")  # no planner to compare with
    if network is None and not candidates:
        return FinalChoice("prior")  # the planner was kept and nothing else competes

    def play(episode_seeds: np.ndarray) -> dict[str, np.ndarray]:
        out = {"prior": prior(episode_seeds)} if prior is not None else {}
        out |= {name: measure(name, episode_seeds) for name in candidates}
        return out | ({"network": network(episode_seeds)} if network is not None else {})

    returns = play(seeds)
    n = len(seeds)
    while True:
        planners = {name: r for name, r in returns.items() if name != "network"}
        best = best_planner(planners, planner_switch_z)
        if more_seeds is None or n >= max_episodes or not planners_unsettled(planners, best):
            break
        extra = play(more_seeds(min(n, max_episodes - n)))
        returns = {name: np.concatenate([r, extra[name]]) for name, r in returns.items()}
        n = len(returns[best])
    means = {name: float(r.mean()) for name, r in returns.items()}
    means = {"network": means.pop("network"), **means} if "network" in means else means
    net = returns.get("network")
    if net is not None and significant_gain(net - planners[best], selection_z):
        return FinalChoice("network", means, list(candidates), n)
    return FinalChoice(best, means, list(candidates), n)


def best_planner(planners: dict[str, np.ndarray], planner_switch_z: float) -> str:
    """The prior's planner unless candidates beat it by ``planner_switch_z`` standard errors (then the best of
    those by mean); without a prior, the best mean (the first on ties)."""
    if "prior" not in planners:
        return max(planners, key=lambda name: planners[name].mean())
    base = planners["prior"]
    better = [n for n in planners if n != "prior" and significant_gain(planners[n] - base, planner_switch_z)]
    return max(better, key=lambda n: planners[n].mean()) if better else "prior"


def planners_unsettled(planners: dict[str, np.ndarray], best: str) -> bool:
    """Whether more episodes could change the choice of ``best``: another planner has the higher mean (it did not
    beat the prior's planner by ``planner_switch_z`` standard errors yet), ``best`` is a candidate and another
    candidate is also ahead of the prior's planner on the mean (at J = 100 such candidates differ by 0.1-0.3%, and
    the standard error of 20 heavy-tailed paired differences misled: J = 100 scheduling seed 1, a 2-standard-error
    lead on 20 fresh episodes, reversed on the 20 evaluation episodes), or ``best`` does not lead another candidate
    by :data:`SETTLED_Z` standard errors."""
    base = planners.get("prior")
    for name, r in planners.items():
        if name == best:
            continue
        lead = planners[best] - r
        if lead.mean() < 0:
            return True
        if "prior" in (best, name):
            continue
        if base is not None and significant_gain(r - base, 0.0):
            return True  # two candidates ahead of the prior's planner: decided on the most episodes
        if not significant_gain(lead, SETTLED_Z):
            return True
    return False


def choose_final(
    trainer: DQNTrainer,
    snapshots: list[tuple[int, Any]],
    best: int,
    has_prior_snapshot: bool,
    seeds: np.ndarray,
    best_returns: np.ndarray,
    selector,
) -> int:
    """After snapshot selection picked ``snapshots[best]`` (``best_returns`` on the validation ``seeds``): the
    :func:`final_choice` against the best planner on ``confirmation_episodes`` fresh episodes, recorded in
    ``trainer.summary``. Returns the snapshot to load (0, the prior's own, where its planner won on an arm-pull
    domain)."""
    from engine.planners import make_planner
    from engine.planners.prior import PlannerPrior

    cfg, s = trainer.config, trainer.summary
    planner = trainer.prior.planner if isinstance(trainer.prior, PlannerPrior) else None
    # on arm-pull domains the prior's snapshot IS the planner; elsewhere the prior only linearises it
    prior_snapshot_is_planner = planner is not None and planner.structure.is_pull and has_prior_snapshot
    is_planner = prior_snapshot_is_planner and best == 0
    fresh = cfg.confirmation_episodes > 0
    final_seeds = trainer.rng.integers(2**31, size=cfg.confirmation_episodes) if fresh else seeds
    net = snapshots[best][1]

    def network(episode_seeds: np.ndarray) -> np.ndarray:
        return trainer.policy_returns(net, episode_seeds, selector, version=-100) if fresh else best_returns

    def prior(episode_seeds: np.ndarray) -> np.ndarray:
        if is_planner and not fresh:
            return best_returns
        return planner_returns("", trainer.instance, planner, episode_seeds)

    planners: dict[str, Any] = {}
    candidates = resolve_candidates(
        cfg.planner_candidates, trainer.instance, planner.name if planner else None, planners
    )

    def fitted(name: str):
        """Each candidate fitted once, for every round of the contest (LP-update's reference LPs included)."""
        if name not in planners:
            planners[name] = make_planner(name, trainer.instance)
        return planners[name]

    choice = final_choice(
        None if is_planner else network,
        prior if planner is not None else None,
        candidates,
        lambda name, episode_seeds: planner_returns("", trainer.instance, fitted(name), episode_seeds),
        final_seeds,
        cfg.selection_z,
        cfg.planner_switch_z,
        (lambda n: trainer.rng.integers(2**31, size=n)) if fresh else None,
        cfg.confirmation_max_episodes,
    )
    if choice.winner == "prior" and prior_snapshot_is_planner:
        best = 0  # the prior's snapshot decides exactly like its planner
    s.kept_planner = choice.winner == "prior" and not prior_snapshot_is_planner
    s.kept_planner_name = choice.winner if choice.winner not in ("network", "prior") else ""
    s.candidate_names = choice.candidates
    s.candidate_returns = [choice.means[name] for name in choice.candidates]
    s.final_returns = choice.means
    s.final_episodes = choice.episodes
    return best
