"""Lock-step evaluation: every episode of one policy advanced together, one batch decision per step.

A policy that decides a batch of states at once (``act_batch`` with ``acts_in_batches()`` true: a planner on a
budget, capacity or scheduling structure, a DQN engine's greedy selector) runs its E episodes side by side: E
environments, each reset with its own episode seed and drawing its own uniforms (common random numbers, as in
the sequential path), one ``act_batch`` over the states of the episodes still running, then each environment
stepped with its own action. The per-episode numbers are recorded in the sequential path's order (episode by
episode), each decision timed as the batch's time over the number of states it decided.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from engine.decision import Decision

if TYPE_CHECKING:
    from engine.analysis.evaluation import MethodResult


@runtime_checkable
class BatchPolicy(Protocol):
    """An evaluation policy that can also decide many episodes' states in one call."""

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator) -> np.ndarray | Decision: ...

    def act_batch(
        self, states: np.ndarray, time_to_go: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> list[Decision]: ...

    def acts_in_batches(self) -> bool: ...


def lockstep_policy(policy: object) -> BatchPolicy | None:
    """``policy`` when it decides batches at once, else None (its episodes run one by one)."""
    return policy if isinstance(policy, BatchPolicy) and policy.acts_in_batches() else None


def runs_in_lockstep(policy: object) -> bool:
    """Whether ``policy`` decides batches at once (else its episodes run one by one)."""
    return lockstep_policy(policy) is not None


def observation_rows(states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
    """Observation rows ``[s_1..s_J, time_to_go]`` (E, J + 1) of arm states (E, J) and times to go."""
    states = np.asarray(states)
    ttg = np.broadcast_to(np.asarray(time_to_go, dtype=states.dtype), (len(states),))
    return np.column_stack([states, ttg])


class _Episode:
    """One running episode's environment, observation, returns and per-decision records."""

    def __init__(self, env: Any, seed: int) -> None:
        self.env = env
        self.obs, _ = env.reset(seed=seed)
        self.realised = self.expected = 0.0
        self.outs: list[tuple[np.ndarray | Decision, float]] = []  # each decision and its share of the batch time
        self.done = False
        self.credited = 0.0  # progress-bar episodes credited so far


def run_lockstep(
    instance: Any,
    policy: BatchPolicy,
    episode_seeds: Sequence[int],
    rngs: Sequence[np.random.Generator],
    result: MethodResult,
    bar: Any = None,
    envs: Sequence[Any] | None = None,
) -> None:
    """Run ``policy`` on every episode in lock step and append the returns and decision records to ``result``
    in the sequential path's order. ``bar`` (tqdm, in episodes) advances by each step's share of the horizon.
    ``envs``: one environment of ``instance`` per episode, reset here (reused across policies: building one
    costs 0.1-0.5 s at J = 1,000 on the worker domains); by default ``instance.make_env()`` each."""
    if envs is None:
        envs = [instance.make_env() for _ in episode_seeds]
    if len(envs) != len(episode_seeds):
        raise ValueError(f"{len(envs)} environments for {len(episode_seeds)} episodes")
    episodes = [_Episode(env, int(seed)) for env, seed in zip(envs, episode_seeds, strict=True)]
    horizon = getattr(instance, "horizon", None)
    step_share = 1.0 / horizon if isinstance(horizon, int) and horizon > 0 else 0.0
    active = [e for e in range(len(episodes))]
    while active:
        running = [episodes[e] for e in active]
        states = np.stack([ep.obs[:-1] for ep in running])
        ttg = np.array([int(ep.obs[-1]) for ep in running], dtype=np.int64)
        t0 = time.perf_counter()
        outs = policy.act_batch(states, ttg, [rngs[e] for e in active])
        seconds = (time.perf_counter() - t0) / len(running)
        if len(outs) != len(running):
            raise RuntimeError(f"act_batch returned {len(outs)} decisions for {len(running)} states")
        for ep, out in zip(running, outs, strict=True):
            ep.outs.append((out, seconds))
            ep.obs, reward, ep.done, _, info = ep.env.step(out.action if isinstance(out, Decision) else out)
            ep.realised += reward
            ep.expected += info["expected_reward"]
        if bar is not None:
            credit = 0.0
            for ep in running:
                share = (1.0 - ep.credited) if ep.done else min(step_share, 1.0 - ep.credited)
                ep.credited += share
                credit += share
            bar.update(credit)
        active = [e for e in active if not episodes[e].done]
    for ep in episodes:  # episode by episode, as the sequential path records them
        for decided, share in ep.outs:
            result.record(decided, share)
        result.realised.append(ep.realised)
        result.expected.append(ep.expected)
