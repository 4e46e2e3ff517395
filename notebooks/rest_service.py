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
# # The REST service from a client
#
# Planning systems that are not written in Python call Redwood over HTTP (`redwood serve`, FastAPI, versioned
# under `/v1`, OpenAPI at `/v1/openapi.json`). This walkthrough plays the client:
#
# 1. check health and version, list scenarios, validate an instance;
# 2. create an API key with the `decide` scope (keys are stored hashed; scopes `read`, `decide`, `admin`);
# 3. register a trained checkpoint from the server's policy directory and ask for decisions along an episode,
#    with an `Idempotency-Key`, a deadline, and a bad request (errors are `{"error": {code, message, field}}`);
# 4. run a combinatorial bandit session: select, report per-arm rewards, watch the regret.
#
# To keep the notebook self-contained the application runs **in-process** (FastAPI's `TestClient`, same
# HTTP semantics) on a throwaway SQLite database. To talk to a real server instead, start it and point the
# notebook at it; every call below is unchanged:
#
# ```bash
# export REDWOOD_POLICY_DIR=/tmp/rw_policies REDWOOD_BOOTSTRAP_KEY=rw_my_admin_key
# redwood serve --host 127.0.0.1 --port 8000 &
# REDWOOD_SERVICE_URL=http://127.0.0.1:8000 jupyter lab notebooks/rest_service.ipynb
# ```

# %%
import os
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import matplotlib.pyplot as plt
import numpy as np
import torch
from fastapi.testclient import TestClient

from api.service import Settings, create_app
from engine import DQNConfig, Engine
from engine.experiments.plots import moving_average, plot_allocations, plot_decision_times
from scenarios import make

SMALL = os.environ.get("REDWOOD_NOTEBOOK_SMALL", "0") == "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
torch.set_num_threads(1)
WORK = Path(tempfile.mkdtemp(prefix="redwood_service_"))
SERVICE_URL = os.environ.get("REDWOOD_SERVICE_URL")  # a running `redwood serve`; None = in-process
POLICY_DIR = Path(os.environ["REDWOOD_POLICY_DIR"]) if SERVICE_URL else WORK / "policies"
# the operator's bootstrap admin key (the server reads it from REDWOOD_BOOTSTRAP_KEY)
ADMIN_KEY = os.environ["REDWOOD_BOOTSTRAP_KEY"] if SERVICE_URL else "rw_notebook_bootstrap_admin_key"

# %% [markdown]
# ## Server side: a trained checkpoint in the policy directory
#
# The operator trains a policy (here a small capacity instance) and saves it as a checkpoint directory
# (`config.json` + `weights.safetensors`, never a pickle) under the server's policy directory.

# %%
env = make("capacity", n_arms=8, budget=3, seed=0, horizon=10)
config = DQNConfig(episodes=6 if SMALL else 60, warm_start_samples=512, warm_start_epochs=20 if SMALL else 200)
engine = Engine.train(env, config, seed=0, progress=not SMALL)
engine.save(POLICY_DIR / "capacity8")
if SERVICE_URL:
    client = httpx.Client(base_url=SERVICE_URL, timeout=30.0)
else:
    settings = Settings(db_url=f"sqlite:///{WORK / 'redwood.db'}", policy_dir=POLICY_DIR, bootstrap_key=ADMIN_KEY)
    client = TestClient(create_app(settings))
admin = {"X-API-Key": ADMIN_KEY}

# %% [markdown]
# ## Health, version, scenarios

# %%
print(client.get("/v1/health").json())
print(client.get("/v1/version").json())
print(client.get("/v1/scenarios", headers=admin).json())
print("no key ->", client.get("/v1/scenarios").status_code, client.get("/v1/scenarios").json())
bad_instance = env.instance.model_dump(mode="json") | {"costs": [1, 2]}
print(client.post("/v1/scenarios/capacity/validate", json={"instance": bad_instance}, headers=admin).json())

# %% [markdown]
# ## A key for the planning system, and the policy

# %%
created = client.post("/v1/keys", json={"name": "planner", "scopes": ["decide"]}, headers=admin).json()
planner = {"X-API-Key": created["key"]}  # shown once; the server keeps only its hash
print("key record:", created["info"])
print("planner registering a policy ->",
      client.post("/v1/policies", json={"path": "capacity8"}, headers=planner).json())
policy = client.post("/v1/policies", json={"path": "capacity8"}, headers=admin).json()
policy_id = policy["id"]
print({k: policy[k] for k in policy if k != "training_summary"})

# %% [markdown]
# ## Decisions along an episode
#
# The client owns the simulation (here the local environment); each step it posts `[s_1..s_J, time_to_go]`
# and applies the returned action. The answers are the same as the library's `engine.decide`.

# %%
obs, _ = env.reset(seed=7)
states, actions, latencies, server, done, total = [], [], [], [], False, 0.0
while not done:
    start = time.perf_counter()
    r = client.post(f"/v1/policies/{policy_id}/decisions", json={"state": obs.tolist(), "selector": "auto"},
                    headers=planner)
    latencies.append(time.perf_counter() - start)
    d = r.json()
    assert r.status_code == 201, d
    server.append(d["seconds"])
    assert d["action"] == engine.decide(obs, selector="auto").action.tolist()
    states.append(obs[:-1])
    actions.append(d["action"][: env.instance.n_arms])
    obs, _, done, _, info = env.step(np.asarray(d["action"]))
    total += info["expected_reward"]
print(f"episode return {total:.2f}; last decision: {d}")

fig, axes = plt.subplots(1, 2, figsize=(15, 3.5))
plot_allocations(np.array(actions), np.array(states), ax=axes[0], title="actions served over HTTP")
plot_decision_times({"HTTP round trip" + ("" if SERVICE_URL else " (in-process)"): latencies,
                     "decision time (server)": server}, ax=axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Idempotency, deadlines and errors
#
# Retrying with the same `Idempotency-Key` replays the stored decision (200 instead of 201); a tight
# `deadline_seconds` still returns, flagged by its status; bad input is a 4xx naming the field.

# %%
state = obs.tolist()
state[-1] = env.instance.horizon
retry = {**planner, "Idempotency-Key": "order-42"}
first = client.post(f"/v1/policies/{policy_id}/decisions", json={"state": state}, headers=retry)
again = client.post(f"/v1/policies/{policy_id}/decisions", json={"state": state}, headers=retry)
print("first", first.status_code, "retry", again.status_code, "same id:", first.json()["id"] == again.json()["id"])
quick = client.post(f"/v1/policies/{policy_id}/decisions",
                    json={"state": state, "selector": "mip", "deadline_seconds": 0.001}, headers=planner).json()
print("deadline 1 ms ->", quick["status"], quick["action"])
for body in ({"state": state[:-2]}, {"state": [*state[:-1], 99]}, {"state": [True] * len(state)}):
    r = client.post(f"/v1/policies/{policy_id}/decisions", json=body, headers=planner)
    print(r.status_code, r.json())

# %% [markdown]
# ## A combinatorial bandit session
#
# The service keeps the learner's state in its database: the client asks which arms to act on
# (`select`), acts, and reports the per-arm rewards it observed (`feedback`, idempotent per selection).
# Here 12 Bernoulli arms, top-3 per round, CUCB.

# %%
rng = np.random.default_rng(0)
means = rng.uniform(0.1, 0.9, 12)
best = np.sort(means)[-3:].sum()
session = client.post("/v1/sessions", json={"kind": "cucb", "n_arms": 12,
                                            "constraint": {"type": "top_k", "k": 3}, "seed": 0},
                      headers=planner).json()
sid = session["id"]
rounds = 40 if SMALL else 300
regret, picks = [], []
for _ in range(rounds):
    sel = client.post(f"/v1/sessions/{sid}/select", json={}, headers=planner).json()
    chosen = np.asarray(sel["action"])
    outcome = (rng.uniform(size=12) < means).astype(float)
    rewards = [float(outcome[i]) if chosen[i] else None for i in range(12)]
    fb = client.post(f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback", json={"rewards": rewards},
                     headers=planner)
    assert fb.status_code == 201, fb.text
    regret.append(best - means @ chosen)
    picks.append(chosen[np.argsort(means)])
info = client.get(f"/v1/sessions/{sid}", headers=planner).json()
print(f"session {sid}: {info['selections']} selections, {info['feedback']} feedback; "
      f"cumulative regret {np.sum(regret):.2f} after {rounds} rounds")
fig, axes = plt.subplots(1, 2, figsize=(15, 3.5))
axes[0].plot(np.cumsum(regret), label="cumulative regret")
axes[0].plot(moving_average(regret, 10) * np.arange(1, rounds + 1), ls=":", label="recent regret x t")
axes[0].set(xlabel="round", ylabel="regret", title="CUCB session over HTTP")
axes[0].legend()
plot_allocations(np.array(picks), ax=axes[1], ylabel="arm (sorted by true mean)", title="arms selected")
fig.tight_layout()
plt.show()

# %%
client.close()
