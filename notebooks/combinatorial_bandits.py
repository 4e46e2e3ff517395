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
# # Combinatorial semi-bandits: CUCB and Thompson sampling
#
# **Problem.** $n$ base arms with unknown mean rewards $\mu_i$ (Bernoulli). Each round we choose a *super-arm*,
# a feasible set of base arms (here: any $k$ arms, or a knapsack of arms with sizes under a capacity), and
# observe the reward of every chosen arm (semi-bandit feedback). The oracle that maximises a weight vector over
# the feasible set is one of Redwood's solvers (top-$k$ by sorting, knapsack by exact DP / HiGHS, any
# `ActionModel` by MILP).
#
# - **CUCB** plays the oracle on upper confidence bounds $\hat\mu_i + \sqrt{1.5 \ln t / n_i}$.
# - **CTS** (combinatorial Thompson sampling) plays the oracle on a sample from each arm's Beta posterior.
#
# Pseudo-regret per round is $\max_S \mu(S) - \mu(S_t)$ on the true means, accumulated over rounds; with a
# learning policy it grows sublinearly (the log-log slope of cumulative regret stays below 1). There is no
# "upper bound" to compare with beyond the oracle itself, which is what regret measures.

# %%
import os
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from bandits import CUCB, BernoulliSemiBandit, CombinatorialThompson, KnapsackOracle, TopKOracle
from bandits.experiments import plot_regret, run_regret
from engine.experiments.plots import plot_allocations

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
OUT = Path(os.environ.get("REDWOOD_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="redwood_nb_"))
warnings.filterwarnings("ignore", message=".*non-interactive.*")

ROUNDS, SEEDS = (300, (0, 1)) if SMALL else (3000, (0, 1, 2, 3, 4))
rng = np.random.default_rng(3)
problems = {
    "top-k (30 arms, k = 5)": (TopKOracle(30, 5), rng.uniform(0.1, 0.9, 30)),
    "knapsack (20 arms, capacity 12)": (KnapsackOracle(rng.integers(1, 6, 20), 12), rng.uniform(0.1, 0.9, 20)),
}
print(f"SMALL={SMALL}: {ROUNDS} rounds, seeds {SEEDS}")

# %% [markdown]
# ## Regret curves

# %%
results = {}
for label, (oracle, means) in problems.items():
    env = BernoulliSemiBandit(means, oracle)
    start = time.perf_counter()
    results[label] = run_regret(env, {
        "CUCB": lambda s, o=oracle: CUCB(o, seed=s),
        "CTS": lambda s, o=oracle: CombinatorialThompson(o, seed=s, propensity_samples=0),
    }, rounds=ROUNDS, seeds=SEEDS)
    print(f"{label} ({time.perf_counter() - start:.1f} s)")
    for name, s in results[label]["summary"].items():
        slope = "n/a" if s["loglog_slope"] is None else f"{s['loglog_slope']:.2f}"
        print(f"  {name:>4}: cumulative regret {s['final']:7.1f} +- {s['final_stderr']:.1f}   first half "
              f"{s['first_half']:6.1f}  second half {s['second_half']:6.1f}   log-log slope {slope}")

# %%
for k, (label, res) in enumerate(results.items()):
    display(Image(str(plot_regret(res, OUT / f"semi_bandit_{k}.png", title=f"{label}: cumulative regret"))))

# %% [markdown]
# ## Which arms get played over time
#
# One run of CTS on the top-$k$ problem: each column is a round, each row a base arm (sorted by true mean,
# best at the top). Exploration spreads early; later the chosen set concentrates on the $k$ best arms.

# %%
oracle, means = problems["top-k (30 arms, k = 5)"]
env = BernoulliSemiBandit(means, oracle)
order = np.argsort(means)  # worst first: the best arms end up at the top of the heatmap
play_rng = np.random.default_rng(0)
chosen = []
for label, policy in (("CTS", CombinatorialThompson(oracle, seed=0, propensity_samples=0)), ("CUCB", CUCB(oracle, seed=0))):
    picks = []
    for _ in range(ROUNDS):
        _, mu, r = env.draw(play_rng)
        sel = policy.select()
        policy.update(sel.action, np.where(sel.action > 0, r, np.nan))
        picks.append(sel.action[order])
    chosen.append((label, np.array(picks)))
fig, axes = plt.subplots(1, 2, figsize=(15, 4))
for ax, (label, picks) in zip(axes, chosen, strict=True):
    plot_allocations(picks, ax=ax, ylabel="arm (sorted by true mean)", title=f"{label}: arms played")
fig.tight_layout()
plt.show()
for label, picks in chosen:
    last = picks[-ROUNDS // 5:]
    share = last[:, -5:].sum() / last.sum()
    print(f"{label}: share of pulls on the 5 best arms in the last 20% of rounds: {100 * share:.0f}%")
