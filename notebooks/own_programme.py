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
# # Bring your own programme: from a beneficiary list and a call log to weekly call plans
#
# **The situation.** A health programme follows 30 beneficiaries. Each week a beneficiary is in one of three
# engagement states (0 = dropped out, 1 = irregular, 2 = engaged) and the programme can call a few of them;
# a call (action 1) makes moving up likelier, no call (action 0) lets engagement drift down. Four health
# workers make the calls, each with a weekly capacity in call-minutes, and not every worker may call every
# beneficiary (language, area). To spread field visits, **at most 2 calls per district** each week.
#
# What the programme has is data: a table of beneficiaries and a **log of past weekly transitions**
# (beneficiary, state, action, next state). This notebook goes from those two files to weekly allocations:
#
# 1. write the two CSV files (synthetic here, generated from a hidden "true" programme so that we can check
#    the result; with real data you start at step 2),
# 2. load and validate the log (`load_transition_log`: a bad row is reported by row and column),
# 3. estimate each beneficiary's dynamics with a Dirichlet posterior, **pooling** beneficiaries of the same
#    cohort so that those with few records borrow strength (`estimate_dynamics`),
# 4. turn the estimate into arms (`PosteriorArms`) and the constraints into blocks: workers' capacities
#    (the `capacity` domain), eligibility (a `linear` block over the worker assignment `x[i,j]`), district caps
#    (a `group_cap` block),
# 5. plan with the restless-bandit planners (Whittle, Lagrangian, LP-update), train a short DQN that starts
#    from the planner, and compare all of them with the certified LP upper bound, on the estimated model and on
#    the hidden truth,
# 6. print one week's plan (which worker calls whom, from `Decision.assignment`), then save and reload the
#    policy with its constraints.
#
# `REDWOOD_NOTEBOOK_SMALL=1` runs a fast smoke version (what the test suite does). The full run takes tens of
# minutes on one core: with the eligibility row, each exact argmax of the DQN costs about a second here (the
# planners' decisions take milliseconds), and the DQN decides about 1,400 times in training and evaluation.

# %%
import os
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from engine import DQNConfig, Engine
from engine.analysis.evaluation import EnginePolicy, evaluate
from engine.analysis.occupancy_bound import occupancy_upper_bound
from engine.baselines.cormab import NullPolicy
from engine.experiments.plots import plot_returns, returns_table
from scenarios import load_instance, make
from scenarios.errors import InfeasibleActionError, InvalidInputError
from scenarios.estimation import (
    Pooling,
    PosteriorArms,
    estimate_dynamics,
    load_transition_log,
    simulate_log,
    synthetic_programme,
)

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
torch.set_num_threads(1)
HORIZON = 4 if SMALL else 20  # weeks per evaluation episode
N_RECORDS = 10_000
EVAL_EPISODES = 2 if SMALL else 20
# eligibility ties the assignment variables, so each exact argmax of the DQN checks candidate actions by many
# small feasibility MILPs (about 1 s a decision here): the smoke run leaves the eligibility row out
ELIGIBILITY = not SMALL
CONFIG = (
    DQNConfig(
        episodes=2, warm_start_samples=128, warm_start_epochs=5, snapshots=2, validation_episodes=1, prior="lagrangian"
    )
    if SMALL
    else DQNConfig(episodes=20, snapshots=3, validation_episodes=3, prior="lagrangian")
)
PLANNERS = ("whittle", "lagrangian") if SMALL else ("whittle", "lagrangian", "lp_update")
DATA = Path(tempfile.mkdtemp(prefix="own_programme_"))
print(f"SMALL={SMALL}: horizon {HORIZON} weeks, {EVAL_EPISODES} evaluation episodes; files in {DATA}")

# %% [markdown]
# ## 1. The programme's files
#
# `beneficiaries.csv`: one row per beneficiary with its district, enrolment cohort (beneficiaries of a cohort
# behave alike: we pool by it), the minutes a call takes and the workers allowed to call them.
# `workers.csv`: each worker's weekly minutes. `transitions.csv`: the past log, one row per beneficiary-week.
# The hidden truth is `synthetic_programme` (30 arms in 3 clusters); the log comes from a past random calling
# policy, with some beneficiaries followed much longer than others.

# %%
truth = synthetic_programme(n_arms=30, n_states=3, n_actions=2, n_clusters=3, seed=0)
rng = np.random.default_rng(0)
N_ARMS, N_DISTRICTS, N_WORKERS = 30, 6, 4
beneficiaries = pd.DataFrame(
    {
        "beneficiary": np.arange(N_ARMS),
        "district": [f"D{d}" for d in np.arange(N_ARMS) % N_DISTRICTS],
        "cohort": truth.clusters,
        "call_minutes": rng.choice([10, 20, 30], N_ARMS),
    }
)
eligible = rng.uniform(size=(N_ARMS, N_WORKERS)) < 0.7
eligible[np.arange(N_ARMS), np.arange(N_ARMS) % N_WORKERS] = True  # everyone has at least one worker
beneficiaries["workers"] = [";".join(str(i) for i in np.flatnonzero(row)) for row in eligible]
workers = pd.DataFrame({"worker": np.arange(N_WORKERS), "minutes": [40, 50, 50, 60]})
beneficiaries.to_csv(DATA / "beneficiaries.csv", index=False)
workers.to_csv(DATA / "workers.csv", index=False)

past = simulate_log(
    truth.transitions, N_RECORDS, rng, initial=truth.initial, arm_weights=truth.arm_weights, episode_length=10
)
past.to_frame().rename(columns={"arm": "beneficiary"}).assign(week=np.tile(np.arange(10), N_RECORDS // 10)).to_csv(
    DATA / "transitions.csv", index=False
)
print(beneficiaries.head(6).to_string(index=False))
print(workers.to_string(index=False))
print(pd.read_csv(DATA / "transitions.csv").head(4).to_string(index=False))

# %% [markdown]
# ## 2. Load and validate the log
#
# `load_transition_log` reads a CSV, Parquet file or DataFrame with columns `arm, state, action, next_state`
# (other columns are ignored) and checks every row. Our file calls the arm `beneficiary`, so we read it with
# pandas and rename. A corrupted copy shows the error: it names the row and the column.

# %%
frame = pd.read_csv(DATA / "transitions.csv").rename(columns={"beneficiary": "arm"})
bad = frame.copy()
bad.loc[41, "next_state"] = 3  # a state that does not exist
try:
    load_transition_log(bad, n_states=3, n_actions=2, n_arms=N_ARMS)
except InvalidInputError as err:
    print("rejected:", err)

log = load_transition_log(frame, n_states=3, n_actions=2, n_arms=N_ARMS)
records = np.bincount(log.arm, minlength=N_ARMS)
print(
    f"{len(log)} records; per beneficiary: min {records.min()}, median {int(np.median(records))}, max {records.max()}"
)

# %% [markdown]
# ## 3. Estimate the dynamics, pooled by cohort
#
# Each (beneficiary, action, state) row of transition probabilities gets a Dirichlet posterior. With pooling,
# its prior is the other cohort members' empirical row, weighted by a pool strength estimated from how alike
# the cohort's members are. Since the data are synthetic we can measure the error against the truth: pooling
# helps most for the beneficiaries with few records.

# %%
cohort = beneficiaries["cohort"].to_numpy()
posterior = estimate_dynamics(log, pooling=Pooling(clusters=cohort))
alone = estimate_dynamics(log)
err_pooled = np.abs(posterior.mean() - truth.transitions).mean(axis=(1, 2, 3))
err_alone = np.abs(alone.mean() - truth.transitions).mean(axis=(1, 2, 3))
sparse = records < np.median(records)
print(f"pool strength per cohort (pseudo-records): {np.round(posterior.pool_strengths[:, 0, 0], 1).tolist()}")
print(
    f"mean |P - P_true|, beneficiaries with fewer records than the median: pooled {err_pooled[sparse].mean():.3f}"
    f", alone {err_alone[sparse].mean():.3f}; the others: pooled {err_pooled[~sparse].mean():.3f}, "
    f"alone {err_alone[~sparse].mean():.3f}"
)

# %% [markdown]
# ## 4. The instance: arms from the estimate, workers, eligibility, district caps
#
# `PosteriorArms` adds what the log does not hold: rewards (engagement 0 / 0.5 / 1 on arrival), the initial
# distribution and the horizon. `mean_arms()` gives the arms of the posterior mean (`sample_arms(rng)` would
# give a posterior draw). Constraints are JSON data:
#
# * the `capacity` domain: worker `i` calls beneficiaries whose call minutes fit in `minutes[i]`;
# * eligibility: one `linear` row, the sum of the assignments `x[i,j]` of every ineligible (worker, beneficiary)
#   pair is 0 (the names `x[i,j]` are the capacity block's assignment variables; full run only, see the first
#   code cell);
# * districts: a `group_cap` block, at most 2 calls per district.

# %%
known = {"arrival_rewards": [0.0, 0.5, 1.0], "initial": truth.initial, "horizon": HORIZON}
bridge = PosteriorArms(posterior, **known)
arms = bridge.mean_arms()
district = beneficiaries["district"].str[1:].astype(int).tolist()
ineligible = {f"x[{i},{j}]": 1.0 for j, i in zip(*np.nonzero(~eligible), strict=True)}
eligibility = {"kind": "linear", "rows": [{"terms": ineligible, "sense": "<=", "rhs": 0, "name": "eligible_only"}]}
constraints = [
    *([eligibility] if ELIGIBILITY else []),  # left out of the smoke run (see the first cell)
    {"kind": "group_cap", "groups": district, "caps": [2] * N_DISTRICTS},
]
instance_data = {
    "arms": arms.model_dump(),
    "costs": beneficiaries["call_minutes"].tolist(),
    "capacities": workers["minutes"].tolist(),
    "constraints": constraints,
}
env = make("capacity", instance=instance_data)
true_data = instance_data | {"arms": bridge.arms(truth.transitions).model_dump()}  # the hidden truth, same rest
true_instance = load_instance("capacity", true_data)
model = env.action_model()
print(
    f"{model.n_actions} pull entries, {model.n_aux} assignment variables, {len(model.row_names)} rows, e.g.",
    [n for n in model.row_names if "eligible" in n or "group_cap" in n][:3],
)

# %% [markdown]
# ## 5. Plan, train, compare
#
# The planners need no training. The DQN learns $Q(s, a)$ as the Lagrangian planner's values plus a learned
# residual, so it starts as the planner and keeps a trained network only when it beats the planner on held-out
# episodes. Every method is evaluated with common random numbers (the same initial states and the same random
# draws), on the estimated model and on the hidden truth; the certified occupancy-LP upper bound of each is
# the yardstick.

# %%
start = time.perf_counter()
planners = {name: Engine.plan(env, name) for name in PLANNERS}
engine = Engine.train(env, CONFIG, seed=0, progress=not SMALL)
print(
    f"planners fitted and DQN trained in {time.perf_counter() - start:.1f} s "
    f"(kept the planner: {engine.training_summary.get('kept_planner')})"
)
# planners act as policies themselves; the engine decides through its exact argmax ("mip")
policies = {**planners, "dqn (lagrangian prior)": EnginePolicy(engine, "mip"), "no calls": NullPolicy(true_instance)}
runs = {
    "estimated model": evaluate(env.instance, policies, episodes=EVAL_EPISODES, seed=1, progress=False),
    "true model": evaluate(true_instance, policies, episodes=EVAL_EPISODES, seed=1, progress=False),
}
bounds = {
    "estimated model": occupancy_upper_bound(env.instance).bound,
    "true model": occupancy_upper_bound(true_instance).bound,
}
table = []
for where, run in runs.items():
    for row in returns_table({n: r.expected for n, r in run.methods.items()}, reference=bounds[where]):
        table.append({"evaluated on": where, **row})
print(pd.DataFrame(table).round(2).to_string(index=False))
print({where: round(b, 2) for where, b in bounds.items()}, "= LP upper bounds")
diff = runs["true model"].paired_difference("dqn (lagrangian prior)", "lagrangian")
print(f"on the truth, dqn - lagrangian per episode: {diff['mean']:+.3f}, 95% CI {np.round(diff['ci95'], 3)}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
for ax, (where, run) in zip(axes, runs.items(), strict=True):
    plot_returns({n: r.expected for n, r in run.methods.items()}, ax=ax, upper_bound=bounds[where], title=where)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. One week's plan
#
# Every decision is a `Decision`: the 0/1 call vector, the planner's value, the solver's status, and
# `assignment`, the certificate of feasibility decoded by the constraint blocks: which worker takes which
# beneficiary, and the calls per district.

# %%
week = np.r_[np.random.default_rng(5).integers(0, 3, N_ARMS), HORIZON]
decision = planners["lagrangian"].decide(week)
for worker, called in sorted(decision.assignment["workers"].items(), key=lambda kv: int(kv[0])):
    minutes = beneficiaries["call_minutes"].to_numpy()[called].sum()
    print(f"worker {worker} ({minutes}/{workers['minutes'][int(worker)]} min): beneficiaries {called}")
groups = next(part["groups"] for part in decision.assignment.values() if "groups" in part)
print("calls per district:", {f"D{g}": n for g, n in groups.items()})
by_eligible = all(eligible[j, int(i)] for i, called in decision.assignment["workers"].items() for j in called)
print("every call made by an eligible worker:", by_eligible, "" if ELIGIBILITY else "(not required in the smoke run)")
print(f"status {decision.status}, {1000 * decision.seconds:.1f} ms")

# %% [markdown]
# ## 7. Save, reload, and the constraints kept
#
# A saved policy holds its instance, constraints included, so a reloaded policy (here, and in the REST service)
# decides under the same rules. An action that breaks them is refused by the environment, naming the rows.

# %%
saved = engine.save(DATA / "policy")
loaded = Engine.load(saved)
print("kinds of constraint blocks kept:", [block.kind for block in loaded.instance.constraints])
same = loaded.decide(week)
print("same decision after reloading:", np.array_equal(same.action, engine.decide(week).action))
too_many = np.zeros(N_ARMS, dtype=int)
too_many[[j for j in range(N_ARMS) if district[j] == 0][:3]] = 1  # three calls in district D0
check_env = loaded.instance.make_env()
check_env.reset(seed=0)
try:
    check_env.step(too_many)
except InfeasibleActionError as err:
    print("refused:", err)
