"""Write the decision-regression fixtures: checkpoints plus the actions they choose on fixed states.

Run once before a refactor (``python -m tests.regression.make_fixtures``); ``tests/test_decision_regression.py``
then checks that every scenario and selector still chooses exactly these actions. The networks are briefly
trained and then perturbed with seeded noise so the learned residual is not zero (an untrained engine would
only repeat its planner prior).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from engine import ActorCriticAgent, ActorCriticConfig, DQNConfig, Engine
from scenarios import make
from scenarios.errors import InvalidInputError

HERE = Path(__file__).resolve().parent / "fixtures"
CORMAB = {
    "capacity": {"n_arms": 6, "budget": 2},
    "scheduling": {"n_arms": 6, "budget": 2},
    "routing": {"n_arms": 6, "budget": 2},
    "multi_intervention": {"n_arms": 6, "budget": 2},
    "overlapping_reach": {"n_arms": 6, "budget": 2},
    "coverage": {"n_arms": 6, "budget": 2},
}
BOXES = {"inventory": {}, "maze": {}}
DQN_SELECTORS = ("mip", "greedy", "enumerate", "auto")
PLANNERS = ("whittle", "lagrangian", "lp_update")
BOX_SELECTORS = ("neighbourhood", "mip")
N_STATES = 8


def _states(env, n: int, seed: int) -> list[list[int]]:
    """Observations reached by random feasible play (arm states then time to go)."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append([int(v) for v in np.asarray(obs).ravel()])
        action = env.action_space.sample() if not hasattr(env, "action_model") else _random_feasible(env, rng)
        obs, _, done, _, _ = env.step(action)
        if done:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    return out


def _random_feasible(env, rng: np.random.Generator) -> np.ndarray:
    return env.action_model().sample(rng)


def _perturb(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    expected: dict = {}
    for name, params in CORMAB.items():
        env = make(name, seed=3, **params)
        torch.manual_seed(0)
        config = DQNConfig(episodes=3, warm_start_samples=256, warm_start_epochs=5, snapshots=1)
        engine = Engine.train(env, config, seed=0, progress=False)
        _perturb(engine.network, seed=11)
        engine.save(HERE / f"{name}.pt")
        states = _states(make(name, seed=3, **params), N_STATES, seed=5)
        entry = {"states": states, "dqn": {}, "planners": {}}
        for selector in DQN_SELECTORS:
            entry["dqn"][selector] = [engine.decide(s, selector=selector).action.tolist() for s in states]
        for planner in PLANNERS:
            try:
                policy = Engine.plan(env, planner)
            except InvalidInputError:  # e.g. Whittle on an intervention domain
                continue
            entry["planners"][planner] = [policy.decide(s, selector="mip").action.tolist() for s in states]
        expected[name] = entry
    for name, params in BOXES.items():
        env = make(name, seed=3, **params)
        torch.manual_seed(0)
        config = ActorCriticConfig(total_steps=256, num_envs=4, learning_starts=128, batch_size=64)
        agent = ActorCriticAgent.train(env, config, seed=0, progress=False)
        agent.save(HERE / f"{name}.pt")
        states = _states(make(name, seed=3, **params), N_STATES, seed=5)
        entry = {"states": states, "dnc": {}}
        for selector in BOX_SELECTORS:
            entry["dnc"][selector] = [
                np.asarray(agent.decide(np.asarray(s), selector=selector).action).tolist() for s in states
            ]
        expected[name] = entry
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
