"""Decision-time selectors of the actor-critic: from the actor's MinMax action to the critic's exact optimum.

- ``minmax``: the actor's proxy mapped into the box and rounded (no search);
- ``neighbourhood``: simulated annealing from the MinMax action scored by the critic, within ``time_limit``,
  kept only where the trust-region guard accepts it;
- ``mip``: the critic's exact maximiser over the box (persistent MILP) warm-started by the MinMax action;
- ``hybrid``: the (unguarded) search's answer warm-starts the MILP.

Each takes the agent and a :class:`BoxQuery` (one state's terms, computed once) and returns
``(action (1, n), info)``. A new selector is one function plus one line in :data:`SELECTORS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from solvers.formulations.separable_reward import SeparableReward

if TYPE_CHECKING:
    from engine.dnc.agent import ActorCriticAgent


@dataclass
class BoxQuery:
    """One normalised state and what every selector reads of it."""

    obs_n: torch.Tensor  # (1, d)
    base: torch.Tensor  # MinMax action (1, n)
    c: torch.Tensor  # the state's constant in the critic's action layer (1, H)
    v: torch.Tensor  # the state-value offset (1,)
    model: SeparableReward | None  # exact expected step reward, with reward_model
    lower: torch.Tensor | None  # per-state box of the post-order levels, with post_decision
    upper: torch.Tensor | None
    start: float  # time.perf_counter() when the decision started


def _search(agent: ActorCriticAgent, q: BoxQuery, time_limit: float | None, guarded: bool) -> tuple[torch.Tensor, dict]:
    result = agent.decision_searcher().search(
        q.c, q.base, time_limit=time_limit, reward=q.model, lower=q.lower, upper=q.upper
    )
    action = agent.guard(q.obs_n, q.base, result.actions, q.model) if guarded else result.actions
    return action, {"search_steps": result.steps}


def _milp(
    agent: ActorCriticAgent, q: BoxQuery, warm: torch.Tensor, time_limit: float | None
) -> tuple[torch.Tensor, dict]:
    remaining = None if time_limit is None else max(time_limit - (time.perf_counter() - q.start), 1e-3)
    found = agent.box_milp().solve(
        q.c[0].double().numpy(),
        warm_start=warm[0].numpy(),
        time_limit=remaining,
        reward=q.model,
        lower=None if q.lower is None else q.lower[0].numpy(),
        upper=None if q.upper is None else q.upper[0].numpy(),
    )
    sol = found.solution
    bound = (sol.bound + float(q.v[0])) / agent.reward_scale + float(agent.phi(q.obs_n)[0])
    info = {"status": sol.status, "bound": bound, "gap": sol.gap, "mip_seconds": sol.seconds}
    return torch.as_tensor(found.action).reshape(1, -1), info


def minmax(agent: ActorCriticAgent, q: BoxQuery, time_limit: float | None) -> tuple[torch.Tensor, dict]:
    return q.base, {}


def neighbourhood(agent: ActorCriticAgent, q: BoxQuery, time_limit: float | None) -> tuple[torch.Tensor, dict]:
    return _search(agent, q, time_limit, guarded=True)


def mip(agent: ActorCriticAgent, q: BoxQuery, time_limit: float | None) -> tuple[torch.Tensor, dict]:
    return _milp(agent, q, q.base, time_limit)


def hybrid(agent: ActorCriticAgent, q: BoxQuery, time_limit: float | None) -> tuple[torch.Tensor, dict]:
    found, info = _search(agent, q, None, guarded=False)
    action, solved = _milp(agent, q, found, time_limit)
    return action, info | solved


BoxSelector = Callable[["ActorCriticAgent", BoxQuery, "float | None"], tuple[torch.Tensor, dict]]

#: the actor-critic's selectors by name
SELECTORS: dict[str, BoxSelector] = {
    "minmax": minmax,
    "neighbourhood": neighbourhood,
    "mip": mip,
    "hybrid": hybrid,
}
