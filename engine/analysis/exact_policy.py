"""The exact expected return of an Engine's greedy policy on a tiny instance: DP policy evaluation, no sampling.

The greedy policy maximises Q(s, .) over every feasible action (the ``enumerate`` selector's answer),
computed for all joint states at once; :func:`engine.analysis.exact_dp.policy_value` then propagates it through
the exact transition model. Compared with the DP optimum this gives the optimality gap without the +-2%
noise of a 50-episode sample mean.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.analysis.exact_dp import ExactResult, policy_value

_BLOCK = 512  # states scored per forward pass


def greedy_actions(engine, states: np.ndarray, time_to_go: int, actions: np.ndarray) -> np.ndarray:
    """argmax_a Q(s, a) over the rows of ``actions`` for each joint state in ``states`` (S, J)."""
    states = np.atleast_2d(np.asarray(states, dtype=np.int64))
    cands = torch.as_tensor(np.asarray(actions, dtype=np.float32))
    chosen = np.empty(len(states), dtype=np.int64)
    enc = engine.encoder
    for start in range(0, len(states), _BLOCK):
        block = states[start : start + _BLOCK]
        feats = torch.as_tensor(enc.encode(block, time_to_go))
        context = torch.as_tensor(enc.context(block, time_to_go)) if engine.network.context_dim else None
        with torch.no_grad():
            q = engine.network.candidate_values(cands.expand(len(block), *cands.shape), feats, context)
        q = q.double().numpy()
        if engine.prior is not None:
            gains, base = engine.prior.coefficients(block, time_to_go)
            q = q + gains @ np.asarray(actions, dtype=float).T + base[:, None]
        q = np.where(engine.instance.uses_unavailable(block[:, None, :], np.asarray(actions)[None]), -np.inf, q)
        chosen[start : start + len(block)] = np.argmax(q, axis=1)
    return np.asarray(actions)[chosen]


def greedy_policy_value(engine, exact: ExactResult) -> float:
    """Exact expected return of ``engine``'s greedy policy from the evaluation initial distribution (its
    planner's, when training kept the planner)."""
    if engine.planner is not None:
        return planner_policy_value(engine.planner.planner, exact)
    return policy_value(
        engine.instance, lambda states, h: greedy_actions(engine, states, h, exact.actions), exact.actions
    )


def planner_actions(planner, states: np.ndarray, time_to_go: int, actions: np.ndarray) -> np.ndarray:
    """The planner's exact argmax over the rows of ``actions`` for each joint state in ``states`` (S, J)."""
    from engine.planners.arm_values import joint_values

    states = np.atleast_2d(np.asarray(states, dtype=np.int64))
    acts = np.asarray(actions)
    chosen = np.empty(len(states), dtype=np.int64)
    for start in range(0, len(states), _BLOCK):
        block = states[start : start + _BLOCK]
        tables = planner.tables(block, time_to_go)  # (b, J, V)
        scores = joint_values(tables, planner.structure, np.broadcast_to(acts, (len(block), *acts.shape)))
        if planner.instance.state_dependent:  # entries the domain closes in the state (not in the tables)
            scores = np.where(planner.instance.uses_unavailable(block[:, None, :], acts[None]), -np.inf, scores)
        chosen[start : start + len(block)] = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1)
    return acts[chosen]


def planner_policy_value(planner, exact: ExactResult | np.ndarray) -> float:
    """Exact expected return of a planner's policy (its objective maximised over every feasible action: the
    actions of ``exact``, or the rows of an array of them)."""
    actions = exact.actions if isinstance(exact, ExactResult) else np.asarray(exact)
    return policy_value(planner.instance, lambda states, h: planner_actions(planner, states, h, actions), actions)


def improvement_steps(planner, exact: ExactResult, steps: int = 3) -> list[float]:
    """Exact values of the planner's policy and of ``steps`` exact policy-improvement steps from it (each the
    greedy one-step lookahead on the previous policy's exact value): what :mod:`engine.lookahead` would reach
    with a perfectly learned value, iteration by iteration. From the evaluation initial distribution."""
    from bandits.restless.joint_dp import expected_next
    from engine.analysis.exact_dp import initial_distribution, joint_states, step_tables

    instance = planner.instance
    states = joint_states(exact.counts)
    reward, mats = step_tables(instance, exact.actions)  # (K, S), -inf where unavailable: never chosen
    lookup = {a.tobytes(): k for k, a in enumerate(exact.actions)}
    columns = np.arange(len(states))
    H = instance.horizon
    policy = {
        h: np.array([lookup[a.tobytes()] for a in planner_actions(planner, states, h, exact.actions)])
        for h in range(1, H + 1)
    }
    rho = initial_distribution(instance)
    out = []
    for _ in range(steps + 1):
        value, greedy = np.zeros(len(states)), {}
        for h in range(1, H + 1):
            q = reward + expected_next(value, mats, exact.counts)  # (K, S): Q of the current policy, h to go
            greedy[h] = np.argmax(q, axis=0)  # the improved policy's choice with h to go
            value = q[policy[h], columns]
        out.append(float(rho @ value))
        policy = greedy
    return out
