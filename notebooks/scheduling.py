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
# # Schedule-constrained restless bandits (coRMAB, scheduling domain)
#
# **Problem.** $J$ arms each sit in a state $s_j \in \{0,1,2,3\}$. Every step a pulled arm moves up one
# level with a high probability $p_j^{1}$, a passive one with a low probability $p_j^{0}$ (otherwise down
# one), and the step pays $\sum_j r_j(s'_j)$; "good" arms pay much more at the top state. At most $B$ arms
# are pulled per step, and a pulled arm needs $K = 2$ distinct (worker, time slot) meetings: workers and arms
# are each available in a few of the day's slots, and a worker serves one arm per slot. Arms crowd the late
# slots and workers the early ones, so the *matching*, not the budget, is what binds. The rows are over the
# pull vector $a$ and assignment variables $x_{ijs}$; feasibility is a bipartite b-matching question.
#
# **Redwood** learns $Q(s, a)$ over state and joint action with a DQN and maximises it *exactly* over the
# feasible set every step (enumeration of the feasible actions when they are few, else the network compiled
# into a MILP), starting from a planner: $Q$ = the planner's per-arm values + a learned residual, so the
# untrained network *is* the planner. We compare it with the planners a restless-bandit practitioner uses first
# (Whittle index, Lagrangian, LP-update; no training), the baselines of the SEQUOIA paper on common random
# numbers, and with two
# yardsticks: the **exact optimum** by dynamic programming over all $4^J$ joint states (small $J$ only) and the
# **occupancy-LP upper bound**, which is certified and works at any size.
#
# Set `REDWOOD_NOTEBOOK_SMALL=1` for a fast smoke run (what the test suite does); the default settings train
# for longer and show a meaningful comparison.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from engine import DQNConfig, Engine
from engine.experiments.report import markdown_table
from engine.experiments.walkthrough import compare_with_baselines, plot_allocation_pair, plot_overview
from scenarios import make

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
torch.set_num_threads(1)

if SMALL:
    N_ARMS, BUDGET, HORIZON, EPISODES, EVAL_EPISODES = 6, 2, 10, 8, 6
    CONFIG = DQNConfig(episodes=EPISODES, warm_start_samples=512, warm_start_epochs=20)
else:
    N_ARMS, BUDGET, HORIZON, EPISODES, EVAL_EPISODES = 8, 3, 20, 100, 50
    CONFIG = DQNConfig(episodes=EPISODES)
print(f"SMALL={SMALL}: J={N_ARMS} arms, budget {BUDGET}, horizon {HORIZON}, {EPISODES} training episodes")

# %% [markdown]
# ## The instance and its feasible set
#
# The generator reproduces the reference distributions: $B$ workers available in 3 slots each (early ones
# more likely), arms in 2 slots each (late ones more likely); the first `budget` arms are the good ones. The `ActionModel` is the single source of
# truth for feasibility: the environment, every baseline and every selector go through it.

# %%
env = make("scheduling", n_arms=N_ARMS, budget=BUDGET, seed=0, horizon=HORIZON)
inst = env.instance
model = env.action_model()
feasible = model.enumerate()
print("arm slots:", inst.arm_slots, "\nworker slots:", inst.worker_slots)
print("top-state rewards:", [row[3] for row in inst.arms.arrival_rewards])
print(f"{len(feasible)} feasible pull vectors out of 2^{N_ARMS} = {2 ** N_ARMS}")
print("rows:", model.row_names[:6], "...")

# %% [markdown]
# ## Train a small policy
#
# The DQN first fits $Q$ to the one-step expected reward (warm start), then runs epsilon-greedy episodes whose
# greedy action is the exact argmax of the network. `engine.training_summary["episode_returns"]` is the
# per-episode (expected) return, i.e. the learning curve.

# %%
start = time.perf_counter()
engine = Engine.train(env, CONFIG, seed=0, progress=not SMALL)
train_seconds = time.perf_counter() - start
summary = engine.training_summary
print(f"trained in {train_seconds:.1f} s, {summary['gradient_steps']} gradient steps, "
      f"{summary['act_decisions']} exact argmaxes while acting ({summary['act_status_counts']})")

# %% [markdown]
# ## Yardsticks and the comparison on common random numbers
#
# The exact optimum (dynamic programming over all joint states) and the occupancy-LP upper bound; then every
# method sees the same initial states and the same uniform draw per arm and step. The return is the sum of
# expected next-step rewards (lower variance than the realised reward, same mean).
# `engine/experiments/walkthrough.py` holds these steps, shared by the coRMAB notebooks.

# %%
comparison = compare_with_baselines(engine, episodes=EVAL_EPISODES, seed=1, progress=not SMALL)
exact, bound, evaluation = comparison.exact, comparison.bound, comparison.evaluation
display(Markdown(markdown_table([comparison.result | {"upper_bound": bound.bound}])))

# %% [markdown]
# ## Plots: learning curve, returns with 95% intervals, decision times

# %%
plot_overview(comparison, summary["episode_returns"], window=EPISODES // 10)
plt.show()

# %% [markdown]
# ## Allocations over time
#
# One evaluation episode of the trained policy and of the myopic baseline: colour = arm state, red squares =
# arms pulled at that step. The first `budget` arms are the high-paying ones.

# %%
plot_allocation_pair(comparison)
plt.show()

# %% [markdown]
# ## One decision
#
# `engine.decide(state)` returns a `Decision` with the action, the predicted value, the solver's bound, gap,
# status and time; any selector can be asked for.

# %%
state = np.concatenate([np.ones(N_ARMS, dtype=int), [HORIZON]])
for selector in ("auto", "mip", "greedy"):
    d = engine.decide(state, selector=selector)
    print(f"{selector:>6}: pull {np.flatnonzero(d.action[:N_ARMS]).tolist()}  value {d.value:.2f}  "
          f"status {d.status}  {1000 * d.seconds:.1f} ms")
