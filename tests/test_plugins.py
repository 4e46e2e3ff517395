"""Plug-ins from outside the package (issue 19 item 3): a toy distribution, found through its ``*.dist-info``
entry points, registers a scenario, a selector, a MILP back-end and a bandit policy; the library, the command
line and the service then use them like the built-in ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

PACKAGE = {
    "__init__.py": '"""A toy Redwood plug-in."""\n',
    "scenario.py": '''
        """A toy scenario: a small capacity instance under its own name."""

        from scenarios.cormab.capacity import CapacityInstance
        from scenarios.cormab.env import CoRMABEnv


        class ToyEnv(CoRMABEnv):
            @property
            def scenario(self) -> str:
                return "toy"


        class ToyInstance(CapacityInstance):
            """Toy plug-in scenario: four arms and two workers."""

            @classmethod
            def generate(cls, n_arms: int = 4, budget: int = 2, seed: int = 0, horizon: int = 10) -> "ToyInstance":
                base = CapacityInstance.generate(n_arms=n_arms, budget=budget, seed=seed, horizon=horizon)
                return cls.model_validate(base.model_dump())

            def make_env(self, training: bool = False) -> ToyEnv:
                return ToyEnv(self, training=training)
        ''',
    "selector.py": '''
        """A toy selector: the best of a few random feasible actions."""

        import time

        import numpy as np

        from engine.decision import Decision


        class BestOfSamples:
            def __init__(self, samples: int = 16, seed: int = 0) -> None:
                self.samples, self.seed = samples, seed

            def select(self, q, time_limit=None) -> Decision:
                start = time.perf_counter()
                rng = np.random.default_rng(self.seed)
                actions = np.stack([q.model.sample(rng) for _ in range(self.samples)])
                values = q.score(actions)
                best = int(np.argmax(values))
                seconds = time.perf_counter() - start
                return Decision(actions[best], float(values[best]), float("inf"), float("inf"), "heuristic",
                                seconds, "toy_best_of")
        ''',
    "backend.py": '''
        """A toy back-end: HiGHS that counts its solves."""

        from solvers.backends.highs import HighsSolver


        class CountingSolver:
            solves = 0

            def __init__(self, **options) -> None:
                self.inner = HighsSolver(**options)

            def solve(self, milp, *args, **kwargs):
                type(self).solves += 1
                return self.inner.solve(milp, *args, **kwargs)
        ''',
    "planner.py": '''
        """A toy planner: the Whittle planner under another name."""

        from engine.planners.whittle import WhittlePlanner


        class ToyWhittle(WhittlePlanner):
            name = "toy_whittle"
        ''',
    "bandit.py": '''
        """A toy semi-bandit: follow the empirical means, untried arms first."""

        import numpy as np

        from bandits.combinatorial.base import SemiBanditPolicy


        class GreedyMeans(SemiBanditPolicy):
            kind = "toy_greedy"

            def __init__(self, oracle, seed: int = 0) -> None:
                super().__init__(oracle, seed)
                self.counts = np.zeros(self.n_arms)
                self.sums = np.zeros(self.n_arms)

            def _scores(self, contexts, n):
                means = np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.inf)
                means = np.where(np.isinf(means), 1e9, means)
                return means if n is None else np.broadcast_to(means, (n, self.n_arms)).copy()

            def _update(self, mask, rewards, contexts) -> None:
                self.counts += mask.sum(0)
                self.sums += rewards.sum(0)
        ''',
}

ENTRY_POINTS = """\
[redwood.scenarios]
toy = toyplug.scenario:ToyInstance

[redwood.selectors]
toy_best_of = toyplug.selector:BestOfSamples

[redwood.planners]
toy_whittle = toyplug.planner:ToyWhittle

[redwood.backends]
toy_highs = toyplug.backend:CountingSolver

[redwood.bandits]
toy_greedy = toyplug.bandit:GreedyMeans
"""

FAST_DQN = ["warm_start_samples=32", "warm_start_epochs=1", "snapshots=1", "validation_episodes=1"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A directory holding the toy package and its distribution metadata, as ``pip install`` would leave it."""
    root = tmp_path_factory.mktemp("site")
    (root / "toyplug").mkdir()
    for name, text in PACKAGE.items():
        (root / "toyplug" / name).write_text(textwrap.dedent(text).lstrip())
    info = root / "toyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


@pytest.fixture
def plugged(site, monkeypatch) -> Path:
    from engine.planners import PLANNERS
    from engine.sequoia.selectors import SELECTORS
    from solvers.backends.registry import BACKENDS

    before = {id(r): set(r) for r in (SELECTORS, BACKENDS, PLANNERS)}
    monkeypatch.syspath_prepend(str(site))
    yield site
    for registry in (SELECTORS, BACKENDS, PLANNERS):  # the plug-ins leave with their distribution
        for name in set(registry) - before[id(registry)]:
            del registry[name]
    for name in [m for m in sys.modules if m == "toyplug" or m.startswith("toyplug.")]:
        del sys.modules[name]


def _cli(site: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *argv], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )


def test_without_the_distribution_nothing_is_registered():
    from scenarios import list_scenarios

    assert "toy" not in list_scenarios()


def test_library_trains_on_the_toy_scenario_and_decides_with_the_toy_selector(plugged, tmp_path):
    from engine import DQNConfig, Engine
    from scenarios import list_scenarios, make

    assert "toy" in list_scenarios()
    env = make("toy", seed=1)
    assert env.scenario == "toy" and type(env.instance).__module__ == "toyplug.scenario"
    config = DQNConfig(
        episodes=3, hidden=(4,), warm_start_samples=32, warm_start_epochs=1, snapshots=1, validation_episodes=1
    )
    engine = Engine.train(env, config, seed=0, progress=False)
    assert "toy_best_of" in engine.selectors
    state = env.reset(seed=0)[0]
    decision = engine.decide(state, selector="toy_best_of")
    assert decision.selector == "toy_best_of" and env.action_model().is_feasible(decision.action)
    exact = engine.decide(state, selector="enumerate")
    assert decision.value <= exact.value + 1e-6  # the samples never beat the exact maximum of the same Q
    loaded = Engine.load(engine.save(tmp_path / "toy"))
    assert loaded.scenario == "toy" and type(loaded.instance).__name__ == "ToyInstance"
    again = loaded.decide(state, selector="toy_best_of")
    assert np.array_equal(again.action, decision.action)


def test_library_solves_with_the_toy_backend(plugged):
    from scenarios import make
    from solvers.backends.registry import available_backends, make_backend

    assert "toy_highs" in available_backends()
    env = make("toy", seed=2)
    milp = env.instance.myopic_milp(env.reset(seed=0)[0][:-1])
    toy = make_backend("toy_highs")
    before = type(toy).solves
    ours, reference = toy.solve(milp), make_backend("highs").solve(milp)
    assert type(toy).solves == before + 1
    assert ours.status == reference.status and ours.objective == pytest.approx(reference.objective)


def test_library_plans_with_the_toy_planner(plugged, tmp_path):
    from engine import Engine
    from engine.planners import PLANNERS, load_plugins
    from scenarios import make

    assert "toy_whittle" in load_plugins() and PLANNERS["whittle"].__name__ == "WhittlePlanner"
    env = make("toy", seed=3)
    state = env.reset(seed=1)[0]
    toy, whittle = Engine.plan(env, "toy_whittle"), Engine.plan(env, "whittle")
    assert np.array_equal(toy.decide(state).action, whittle.decide(state).action)
    loaded = Engine.load(toy.save(tmp_path / "planner"))
    assert loaded.name == "toy_whittle" and np.array_equal(loaded.decide(state).action, whittle.decide(state).action)


def test_library_runs_the_toy_bandit(plugged):
    from bandits import TopKOracle
    from bandits.registry import bandit_kinds, make_bandit

    assert "toy_greedy" in bandit_kinds()
    policy = make_bandit("toy_greedy", TopKOracle(5, 2), seed=0)
    rng = np.random.default_rng(0)
    means = np.array([0.1, 0.9, 0.2, 0.8, 0.3])
    for _ in range(20):
        action = policy.select().action
        policy.update(action, np.where(action > 0, rng.binomial(1, means), 0.0))
    assert set(np.flatnonzero(policy.select().action)) == {1, 3}  # the two best arms once every arm was tried


def test_cli_lists_and_trains_the_toy_scenario(site, tmp_path):
    listed = _cli(site, "scenarios")
    assert listed.returncode == 0, listed.stderr
    assert "toy                  Toy plug-in scenario: four arms and two workers." in listed.stdout.splitlines()
    code = (
        "import sys; from api.cli import main; main(['scenarios']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy') or m == 'toyplug.scenario'))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert imported.stdout.splitlines()[-1] == "[]", imported.stdout  # listing a plug-in does not import it
    out = tmp_path / "toy"
    trained = _cli(
        site, "train", "toy", "--n-arms", "4", "--budget", "2", "--episodes", "2", "--hidden", "4",
        "--dqn-option", *FAST_DQN, "--out", str(out), "--quiet",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout.splitlines()[-1])["checkpoint"] == str(out)
    decided = _cli(site, "decide", str(out), "--state", "0,1,0,1,10", "--selector", "toy_best_of")
    assert decided.returncode == 0, decided.stderr
    assert json.loads(decided.stdout)["selector"] == "toy_best_of"


def test_service_serves_a_policy_on_the_toy_scenario(plugged, tmp_path):
    from fastapi.testclient import TestClient

    from api.service import Settings, create_app

    key = "rw_admin_test_key_0123456789abcdef"
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'r.db'}", policy_dir=tmp_path, secret="s", bootstrap_key=key)
    headers = {"X-API-Key": key}
    with TestClient(create_app(settings)) as client:
        names = [s["name"] for s in client.get("/v1/scenarios", headers=headers).json()["scenarios"]]
        assert "toy" in names
        body = {"scenario": "toy", "planner": "whittle", "n_arms": 4, "budget": 2, "seed": 0}
        created = client.post("/v1/planners", json=body, headers=headers)
        assert created.status_code in (200, 201), created.text
        policy = created.json()
        assert policy["scenario"] == "toy"
        url = f"/v1/policies/{policy['id']}/decisions"
        decided = client.post(url, json={"state": [0, 1, 0, 1, 10]}, headers=headers)
        assert decided.status_code in (200, 201), decided.text
        assert len(decided.json()["action"]) == 4 and decided.json()["status"] == "optimal"
