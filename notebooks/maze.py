# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A maze driven by binary actuators: actor-critic with neighbourhood search
#
# **Problem.** An agent in the unit square must reach a goal disc past two walls with gaps. It has $n$
# binary actuators; actuator $i$ pushes along the angle $2\pi i / n$ and the step moves along the normalised
# sum of the active pushes (plus noise), stopping at walls. Many of the $2^n$ joint actions give the same move,
# and with `teleport=True` tiles jump the agent elsewhere, so $Q$ is non-smooth in the action. Reaching the
# goal pays 10, every step costs 0.1, and a potential-based progress term shapes the reward without changing
# the optimal policy.
#
# **Redwood** trains a deterministic actor and a critic that is a one-hidden-layer ReLU function of the action
# for a fixed state; decisions are the rounded actor (**MinMax**), a **neighbourhood search** over bit flips
# scored by the critic, or the critic's **exact MILP** argmax. Baselines: MinMax, k-NN (Wolpertinger) and a
# random-actuator policy.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from engine.dnc import ActorCriticAgent, ActorCriticConfig
from engine.baselines.boxes import KNNPolicy, evaluate
from engine.experiments.plots import (
    plot_allocations,
    plot_decision_times,
    plot_learning_curve,
    plot_maze,
    plot_returns,
    returns_table,
    rollout_positions,
)
from scenarios import make

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
torch.set_num_threads(1)

if SMALL:
    N_ACTUATORS, HORIZON, EVAL_EPISODES = 6, 30, 2
    CONFIG = ActorCriticConfig(total_steps=400, learning_starts=200, batch_size=64, gamma=0.98,
                               train_selector="minmax")
else:
    N_ACTUATORS, HORIZON, EVAL_EPISODES = 8, 100, 20
    CONFIG = ActorCriticConfig(total_steps=10_000, learning_starts=1_000, gamma=0.98)
env = make("maze", n_actuators=N_ACTUATORS, seed=0, horizon=HORIZON)
inst = env.instance
print(f"SMALL={SMALL}: {N_ACTUATORS} actuators (2^{N_ACTUATORS} = {2 ** N_ACTUATORS} joint actions), "
      f"horizon {HORIZON}, {CONFIG.total_steps} training transitions")
plot_maze(inst, title="the maze")
plt.show()

# %% [markdown]
# ## Train

# %%
start = time.perf_counter()
agent = ActorCriticAgent.train(env, CONFIG, seed=0, progress=not SMALL)
print(f"trained in {time.perf_counter() - start:.1f} s, {len(agent.training_returns)} episodes")

# %% [markdown]
# ## Evaluate on common random numbers


# %%
def random_actuators(obs, rng=np.random.default_rng(0)):
    return rng.integers(0, 2, N_ACTUATORS)


policies = {
    "neighbourhood search": agent.policy("neighbourhood"),
    "MinMax (rounded actor)": agent.policy("minmax"),
    "k-NN (Wolpertinger)": KNNPolicy(agent, k=16),
    "random actuators": random_actuators,
}
if not SMALL:  # the exact MILP takes ~0.1-0.2 s per decision here: evaluated with the default settings only
    policies["exact MILP on the critic"] = agent.policy("mip")
results = {name: evaluate(env, p, episodes=EVAL_EPISODES, seed=10_000) for name, p in policies.items()}
for row in returns_table({n: r.returns for n, r in results.items()}):
    r = results[row["method"]]
    print(f"{row['method']:>26}: return {row['mean']:7.2f}  95% CI [{row['ci_low']:.2f}, {row['ci_high']:.2f}]  "
          f"steps/episode {r.seconds.size / r.returns.size:5.1f}  median decision {1000 * np.median(r.seconds):.2f} ms")

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
plot_learning_curve(agent.training_returns, ax=axes[0], window=5)
plot_returns({n: r.returns for n, r in results.items()}, ax=axes[1])
plot_decision_times({n: r.seconds for n, r in results.items()}, ax=axes[2])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Search vs exact argmax at the start state
#
# The MILP certifies how far the neighbourhood search's answer is from the critic's true maximum.

# %%
obs, _ = env.reset(seed=10_000)
for selector in ("minmax", "neighbourhood", "mip"):
    action, info = agent.act(obs, selector=selector) if hasattr(agent, "act") else agent.decide(obs, selector)
    print(f"{selector:>13}: actuators {np.flatnonzero(action).tolist()}  critic value {info['value']:.3f}  "
          f"{info['status']}  {1000 * info['seconds']:.1f} ms")

# %% [markdown]
# ## Trajectories and actuator use
#
# Left: one episode per policy on the same noise seed. Right: which actuators the neighbourhood search
# switches on at each step (actuator $i$ pushes along $2\pi i/n$).

# %%
paths = {name: rollout_positions(env, policies[name], seed=10_000)
         for name in ("neighbourhood search", "MinMax (rounded actor)", "random actuators")}
obs, _ = env.reset(seed=10_000)
actions, done = [], False
while not done:
    a = policies["neighbourhood search"](obs)
    obs, _, terminated, truncated, _ = env.step(a)
    actions.append(a)
    done = terminated or truncated
fig, axes = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [1, 1.6]})
plot_maze(inst, paths, ax=axes[0], title="trajectories")
plot_allocations(np.array(actions), ax=axes[1], ylabel="actuator", title="neighbourhood search: actuators on")
fig.tight_layout()
plt.show()
