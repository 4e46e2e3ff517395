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
# # Path-constrained restless bandits on a graph (coRMAB, routing domain)
#
# **Problem.** The arms are the nodes of a transit graph (here the London Underground subgraph with 20
# stations used by the SEQUOIA paper). Each arm sits in a state $s_j \in \{0,1,2,3\}$; a pulled arm moves up
# one level with high probability, a passive one with low probability, and the step pays $\sum_j r_j(s'_j)$.
# Every step one agent leaves the **source** station, makes a closed walk of exactly $T = 2B$ moves (a move
# follows an edge or waits) and returns; it can pull only the stations it visits, at most $B$ of them. The
# feasible set is a small travelling-salesman question per action: rows over the pull vector and a
# time-expanded flow $y_{t,u,v}$, with an exact walk oracle.
#
# Redwood's Q-network is maximised exactly over this set (enumeration of the few thousand feasible pull
# vectors); we compare it with the planners (Whittle index, Lagrangian, LP-update: no training), the baselines
# and the certified occupancy-LP upper bound, and draw the chosen
# walk on the graph. If the tube data are absent (fresh machine), the notebook falls back to the scenario's
# generated transit-like graph with the same size.

# %%
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from engine import DQNConfig, Engine
from engine.baselines.cormab import BASELINES
from engine.analysis.evaluation import EnginePolicy, evaluate
from engine.analysis.occupancy_bound import occupancy_upper_bound
from engine.experiments.plots import (
    decision_times,
    episode_trace,
    graph_layout,
    plot_allocations,
    plot_decision_times,
    plot_learning_curve,
    plot_returns,
    plot_routing,
)
from engine.experiments.report import markdown_table
from engine.experiments.walkthrough import planner_policies
from scenarios.cormab.routing import RoutingInstance

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
torch.set_num_threads(1)

TUBE = Path(os.environ.get("REDWOOD_TUBE_DIR", "/work/shared/data/london_tube")) / "london_tube_20.csv"
if SMALL:
    HORIZON, EPISODES, EVAL_EPISODES = 6, 4, 3
    CONFIG = DQNConfig(episodes=EPISODES, warm_start_samples=256, warm_start_epochs=20)
else:
    HORIZON, EPISODES, EVAL_EPISODES = 20, 100, 30
    CONFIG = DQNConfig(episodes=EPISODES)

# %% [markdown]
# ## The graph

# %%
if TUBE.exists():
    inst = RoutingInstance.from_edge_csv(TUBE, horizon=HORIZON)  # source 0, budget 5 (the paper's J = 20)
    graph_name = "London tube, 20 stations"
else:
    inst = RoutingInstance.generate(n_arms=20, budget=5, seed=0, horizon=HORIZON)
    graph_name = "generated transit-like graph (tube data not found)"
env = inst.make_env()
model = env.action_model()
pos = graph_layout(inst)
print(f"{graph_name}: {inst.n_arms} nodes, {len(inst.edges)} edges, source {inst.source}, "
      f"budget B = {inst.budget}, walks of {inst.walk_length} moves")
print(f"{len(model.enumerate())} feasible pull vectors")
ax = plot_routing(inst, pos=pos, title=f"{graph_name} (square = source)")
plt.show()

# %% [markdown]
# ## Train, bound and evaluate

# %%
start = time.perf_counter()
engine = Engine.train(env, CONFIG, seed=0, progress=not SMALL)
print(f"trained in {time.perf_counter() - start:.1f} s")
bound = occupancy_upper_bound(inst)
print(f"occupancy-LP upper bound: {bound.bound:.2f} ({bound.method}, {bound.seconds:.2f} s)")

policies = {
    "Q-network, exact argmax": EnginePolicy(engine, "auto"),
    "iterative DQN (greedy)": EnginePolicy(engine, "greedy"),
    **planner_policies(engine),  # Whittle index, Lagrangian and LP-update planners: no training
    **{name: cls(inst) for name, cls in BASELINES.items() if not (SMALL and name == "sampling")},
}  # SMALL skips "sampling": 100 exact walk checks per decision make it the slowest baseline here
evaluation = evaluate(inst, policies, episodes=EVAL_EPISODES, seed=1, reference="Q-network, exact argmax",
                      progress=not SMALL, scenario="routing")
result = evaluation.to_dict()
display(Markdown(markdown_table([result | {"upper_bound": bound.bound}])))
for name, stats in result["methods"].items():
    mean = stats["mean_expected_return"]
    print(f"{name:>24}: {mean:7.2f}  = {100 * mean / bound.bound:5.1f}% of the LP bound, "
          f"median decision {1000 * stats['decision_seconds']['median']:.1f} ms")

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
plot_learning_curve(engine.training_summary["episode_returns"], ax=axes[0], window=max(2, EPISODES // 10),
                    reference={"upper bound": bound.bound})
plot_returns(evaluation, ax=axes[1], upper_bound=bound.bound)
plot_decision_times(decision_times(evaluation), ax=axes[2])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## One decision drawn on the graph
#
# A state from the middle of an evaluation episode: node colour = arm state (darker = higher), red rings =
# stations pulled, orange = the closed walk from the source (edge labels: order of the moves). The myopic
# baseline sees the same state.

# %%
trace = episode_trace(inst, policies["Q-network, exact argmax"], seed=5)
step = HORIZON // 2
state = np.concatenate([trace["states"][step], [HORIZON - step]])
fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
for ax, name in zip(axes, ["Q-network, exact argmax", "myopic"], strict=True):
    if name.startswith("Q-network"):
        decision = engine.decide(state, selector="auto")
        action, label = decision.action, f"value {decision.value:.1f}, {1000 * decision.seconds:.1f} ms"
    else:
        action, label = policies[name].act(state[:-1], int(state[-1]), np.random.default_rng(0)), "one-step"
    walk = inst.walk(action)
    plot_routing(inst, state[:-1], action, walk, pos=pos, ax=ax,
                 title=f"{name}: pulls {np.flatnonzero(action[:inst.n_arms]).tolist()} ({label})")
    print(f"{name}: walk {walk}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Allocations over time (one episode of the trained policy)

# %%
plot_allocations(trace["actions"][:, : inst.n_arms], trace["states"], ylabel="station",
                 title=f"Q-network: return {trace['expected'].sum():.1f}")
plt.show()
