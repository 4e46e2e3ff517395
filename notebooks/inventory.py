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
# # Joint inventory replenishment: actor-critic with neighbourhood search
#
# **Problem.** $n$ items with Poisson demand (rate 20 for even items, 10 for odd ones). Every step the action
# sets an *order-up-to level* $S_i \in \{0, \dots, 66\}$ per item; the order $\max(S_i - \mathrm{inv}_i, 0)$
# arrives at once, demand is served, unmet demand is backordered. The step cost is
# $10 \cdot \text{units ordered} + 75 \cdot [\text{any order}] + 1 \cdot \text{held} + 19 \cdot \text{backordered}$:
# the fixed cost couples the items, so ordering everything together now and then beats ordering each item
# every step. The joint action space has $67^n$ elements ($n = 40$: $10^{73}$), far too many to enumerate.
#
# **Redwood** trains a deterministic actor and a critic whose action enters one ReLU layer linearly; at
# decision time the actor's proxy is rounded (**MinMax**) and improved by a **neighbourhood search**
# (simulated annealing scored incrementally by the critic), or the critic is maximised exactly by a **MILP**.
# The yardsticks are the operations-research policies tuned by simulation: **base-stock** (order up to fixed
# levels) and **joint (s, S)**. No certified upper bound is available for this domain.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from engine.dnc import ActorCriticAgent, ActorCriticConfig
from engine.baselines.boxes import KNNPolicy, evaluate, inventory_yardstick
from engine.experiments.plots import plot_allocations, plot_decision_times, plot_learning_curve, plot_returns, returns_table
from scenarios import make

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
torch.set_num_threads(1)

if SMALL:
    N_ITEMS, HORIZON, EVAL_EPISODES = 2, 20, 3
    CONFIG = ActorCriticConfig(total_steps=400, learning_starts=200, batch_size=64, train_selector="minmax")
else:
    N_ITEMS, HORIZON, EVAL_EPISODES = 3, 100, 20
    CONFIG = ActorCriticConfig(total_steps=12_000, learning_starts=1_000)
env = make("inventory", n_items=N_ITEMS, seed=0, horizon=HORIZON)
inst = env.instance
print(f"SMALL={SMALL}: {N_ITEMS} items, demand rates {inst.demand_rates}, horizon {HORIZON}, "
      f"10^{inst.n_actions_log10:.1f} joint actions, {CONFIG.total_steps} training transitions")

# %% [markdown]
# ## Train the actor-critic
#
# `agent.training_returns` holds the return of every finished training episode (the learning curve).

# %%
start = time.perf_counter()
agent = ActorCriticAgent.train(env, CONFIG, seed=0, progress=not SMALL)
print(f"trained in {time.perf_counter() - start:.1f} s, {len(agent.training_returns)} episodes")

# %% [markdown]
# ## Baselines: tuned base-stock and joint (s, S)
#
# Both are tuned by simulation on demand seeds disjoint from the evaluation seeds.

# %%
best, (base_stock, joint_ss) = inventory_yardstick(inst, episodes=16 if SMALL else 64)
print("base-stock levels:", base_stock.levels, " joint (s, S):", joint_ss.reorder, joint_ss.levels)

# %% [markdown]
# ## Evaluate on common random numbers (same demand seeds for every policy)

# %%
policies = {
    "neighbourhood search": agent.policy("neighbourhood"),
    "MinMax (rounded actor)": agent.policy("minmax"),
    "exact MILP on the critic": agent.policy("mip"),
    "base-stock (tuned)": base_stock,
    "joint (s,S) (tuned)": joint_ss,
}
if N_ITEMS <= 3:  # k-NN / Wolpertinger materialises the whole action set
    policies["k-NN (Wolpertinger)"] = KNNPolicy(agent, k=64)
results = {name: evaluate(env, p, episodes=EVAL_EPISODES, seed=10_000) for name, p in policies.items()}
yardstick = max(results[n].mean for n in ("base-stock (tuned)", "joint (s,S) (tuned)"))
for row in returns_table({n: r.returns for n, r in results.items()}):
    cost = -row["mean"]
    print(f"{row['method']:>26}: mean cost {cost:9.1f}  95% CI [{-row['ci_high']:.1f}, {-row['ci_low']:.1f}]  "
          f"({100 * cost / -yardstick:.1f}% of the best OR policy's cost), "
          f"median decision {1000 * np.median(results[row['method']].seconds):.2f} ms")

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
plot_learning_curve(agent.training_returns, ax=axes[0], window=5,
                    reference={"best OR policy (evaluation)": yardstick})
plot_returns({n: r.returns for n, r in results.items()}, ax=axes[1], xlabel="mean return (= - cost)")
plot_decision_times({n: r.seconds for n, r in results.items()}, ax=axes[2])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Order-up-to levels and inventory over one episode
#
# Heatmap: the level each policy sets per item and step (0 = no order). Lines: inventory after demand.


# %%
def rollout(policy, seed=10_000):
    obs, _ = env.reset(seed=seed)
    levels, stock, done = [], [], False
    while not done:
        action = policy(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        levels.append(action)
        stock.append(obs)
        done = terminated or truncated
    return np.array(levels), np.array(stock)


fig, axes = plt.subplots(2, 2, figsize=(15, 6))
for col, name in enumerate(["neighbourhood search", "base-stock (tuned)"]):
    levels, stock = rollout(policies[name])
    plot_allocations(levels, ax=axes[0, col], ylabel="item", title=f"{name}: order-up-to levels")
    axes[1, col].plot(stock)
    axes[1, col].axhline(0, color="black", lw=0.8)
    axes[1, col].set(xlabel="step", ylabel="inventory (negative = backlog)", title=f"{name}: inventory")
fig.tight_layout()
plt.show()
