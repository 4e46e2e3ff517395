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
# # Restless bandits: Whittle index policy vs the LP upper bound
#
# **Problem.** $N$ arms, each a small Markov decision process (here the coRMAB arm: states $0..3$, up one
# level with probability $p^1_j$ when pulled and $p^0_j$ when passive, reward $r(s, a) = E[r_j(s')]$). Every
# step at most $B$ arms may be pulled. The joint problem has $4^N$ states; the **Whittle index** decouples
# it: for each arm and state, the subsidy for staying passive at which pulling and resting are equally good.
# Pull the $B$ arms with the largest indices. With a finite horizon the index also depends on the time to go.
#
# **Yardsticks.** The occupancy-measure **LP bound** relaxes the per-step budget to hold in expectation: it
# is an upper bound on *every* policy's expected return. We also run the **Lagrangian** policy (each arm plans
# against the LP's per-period prices) and a **myopic** top-$B$ by immediate gain. Then a **learning** Whittle
# policy that does not know the transitions (posterior sampling) is compared with the one that does.

# %%
import os
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from bandits import (
    LagrangianPolicy,
    LearningWhittlePolicy,
    LPBound,
    RestlessSimulator,
    WhittlePolicy,
    from_cormab,
    simulate,
)
from bandits.experiments import plot_regret, run_regret
from engine.experiments.plots import plot_allocations, plot_returns, returns_table
from scenarios.cormab.instance import generate_arms

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
OUT = Path(os.environ.get("REDWOOD_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="redwood_nb_"))
warnings.filterwarnings("ignore", message=".*non-interactive.*")

N_ARMS, BUDGET, HORIZON = (30, 3, 20) if SMALL else (100, 10, 20)
EPISODES, LEARN_EPISODES, SEEDS = (200, 10, (0,)) if SMALL else (1000, 60, (0, 1, 2))
table = generate_arms(N_ARMS, BUDGET, seed=0, horizon=HORIZON)
arms = from_cormab(table)
print(f"SMALL={SMALL}: {N_ARMS} arms, budget {BUDGET}, horizon {HORIZON}")

# %% [markdown]
# ## Indices and the LP bound

# %%
start = time.perf_counter()
whittle = WhittlePolicy(arms, BUDGET, discount=1.0, horizon=HORIZON)
print(f"finite-horizon Whittle indices in {time.perf_counter() - start:.2f} s, "
      f"indexable arms: {int(whittle.indices.indexable.sum())}/{N_ARMS}")
lp = LPBound(arms, BUDGET, horizon=HORIZON).fit()
print(f"LP upper bound on the expected return: {lp.value:.2f} ({lp.seconds:.2f} s)")

values = np.asarray(whittle.indices.values)  # (arms, time-to-go, states, levels)
fig, ax = plt.subplots(figsize=(9, 3))
img = ax.imshow(values[:, -1, :, 0].T, aspect="auto", cmap="viridis", origin="lower")
ax.set(xlabel="arm (the first BUDGET arms are the good ones)", ylabel="state",
       title=f"Whittle index with {HORIZON} steps to go")
plt.colorbar(img, ax=ax)
plt.show()


# %% [markdown]
# ## Policies on common random numbers


# %%
class Myopic:
    """Top-B arms by immediate gain r(s, 1) - r(s, 0)."""

    def __init__(self, arms, budget):
        _, R, _, _ = arms.arrays()
        self.gain, self.budget = R[..., 1] - R[..., 0], budget

    def select(self, states, time_to_go=None):
        g = np.take_along_axis(np.broadcast_to(self.gain, (*np.shape(states)[:-1], *self.gain.shape)),
                               np.asarray(states)[..., None], -1)[..., 0]
        top = np.argsort(-g, axis=-1, kind="stable")[..., : self.budget]
        out = np.zeros(np.shape(states), dtype=np.int64)
        np.put_along_axis(out, top, 1, -1)
        return out

    def update(self, *args):
        pass


policies = {
    "Whittle (finite horizon)": whittle,
    "Whittle (discounted 0.95)": WhittlePolicy(arms, BUDGET, discount=0.95),
    "Lagrangian (LP prices)": LagrangianPolicy(arms, BUDGET, horizon=HORIZON, bound=lp),
    "myopic": Myopic(arms, BUDGET),
}
returns = {name: simulate(arms, pol, BUDGET, HORIZON, n_episodes=EPISODES, seed=0)["returns"]
           for name, pol in policies.items()}
for row in returns_table(returns, reference=lp.value, reference_name="LP bound"):
    print(f"{row['method']:>26}: {row['mean']:8.2f}  95% CI [{row['ci_low']:.2f}, {row['ci_high']:.2f}]  "
          f"{row['% of LP bound']:.1f}% of the LP bound")
plot_returns(returns, upper_bound=lp.value, title=f"return per policy, {EPISODES} episodes (95% CI)")
plt.show()

# %% [markdown]
# ## Allocations over time
#
# One episode of the Whittle policy: colour = arm state, red squares = pulled arms (the first 40 arms shown).


# %%
def trace(policy, seed=1):
    sim = RestlessSimulator(arms, BUDGET, seed=seed)
    states, S, A = sim.reset(1)[0], [], []
    for t in range(HORIZON):
        a = np.asarray(policy.select(states, time_to_go=HORIZON - t)).reshape(-1)
        S.append(states)
        A.append(a)
        states = sim.step(a[None])[0][0]
    return np.array(S), np.array(A)


fig, axes = plt.subplots(1, 2, figsize=(15, 5))
for ax, name in zip(axes, ["Whittle (finite horizon)", "myopic"], strict=True):
    S, A = trace(policies[name])
    shown = min(N_ARMS, 40)
    plot_allocations(A[:, :shown], S[:, :shown], ax=ax, title=name)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Learning the transitions
#
# `LearningWhittlePolicy` knows the rewards but not the transition probabilities: it keeps Dirichlet
# posteriors over each arm's transitions and plans with sampled (Thompson) or optimistic (UCB) models.
# Regret per episode is measured against the Whittle policy that knows the transitions, on the same random
# numbers; it should flatten as the posteriors concentrate.

# %%
rewards_table = np.asarray(table.arrival_rewards)
start = time.perf_counter()
regret = run_regret(arms, {
    "Thompson": lambda s: LearningWhittlePolicy(rewards_table, BUDGET, discount=0.95, replan_every=HORIZON, seed=s),
    "UCB": lambda s: LearningWhittlePolicy(rewards_table, BUDGET, discount=0.95, method="ucb",
                                           replan_every=HORIZON, seed=s),
}, rounds=LEARN_EPISODES, seeds=SEEDS, budget=BUDGET, episode_length=HORIZON)
print(f"{LEARN_EPISODES} episodes x {len(SEEDS)} seeds in {time.perf_counter() - start:.1f} s")
for name, s in regret["summary"].items():
    print(f"{name:>9}: cumulative regret {s['final']:.1f} (first half {s['first_half']:.1f}, "
          f"second half {s['second_half']:.1f})")
display(Image(str(plot_regret(regret, OUT / "restless_regret.png", title="learning Whittle: regret"))))
