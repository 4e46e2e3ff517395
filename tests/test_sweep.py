"""The multi-domain sweep and its executors: serial (through the CLI) vs a local Ray cluster give identical
numbers; outputs are written; no method beats the certified bound or the exact optimum beyond sampling
error; bad input names its field. The Ray cluster is started once for the module (2 CPUs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api.cli import main
from engine.experiments.executors import SerialExecutor, make_executor
from engine.experiments.sweep import DOMAINS, SweepConfig, comparable, run_sweep
from scenarios.errors import InvalidInputError

DQN = {"warm_start_samples": 256, "warm_start_epochs": 10, "hidden": [8]}
TINY = {
    "domains": DOMAINS,
    "seeds": (0, 1),
    "n_arms": 6,
    "budget": 2,
    "horizon": 6,
    "train_episodes": 3,
    "eval_episodes": 6,
}
CLI_TINY = [
    "--domains",
    *DOMAINS,
    "--seeds",
    "0",
    "1",
    "--n-arms",
    "6",
    "--budget",
    "2",
    "--horizon",
    "6",
    "--train-episodes",
    "3",
    "--episodes",
    "6",
    "--hidden",
    "8",
    "--dqn-option",
    "warm_start_samples=256",
    "warm_start_epochs=10",
    "--quiet",
]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from engine.experiments.executors import RayExecutor

    with RayExecutor(num_cpus=2, progress=False):  # the tests' executors reuse this session
        yield ray
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def serial_outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    paths = {k: out / f"sweep.{ext}" for k, ext in (("json", "json"), ("markdown", "md"), ("plot", "png"))}
    code = main(
        [
            "evaluate",
            *CLI_TINY,
            "--json",
            str(paths["json"]),
            "--markdown",
            str(paths["markdown"]),
            "--plot",
            str(paths["plot"]),
        ]
    )
    assert code == 0
    return paths


@pytest.fixture(scope="module")
def serial_sweep(serial_outputs):
    return json.loads(serial_outputs["json"].read_text())


def test_serial_cli_matches_library_config(serial_sweep):
    assert serial_sweep["config"] == SweepConfig(**TINY, dqn=DQN).to_dict()
    assert [(t["domain"], t["seed"]) for t in serial_sweep["tasks"]] == [(d, s) for d in DOMAINS for s in (0, 1)]


def test_ray_sweep_identical_to_serial(ray_cluster, serial_sweep):
    with make_executor("ray", num_cpus=2, progress=False) as executor:
        sweep = run_sweep(SweepConfig(**TINY, dqn=DQN), executor, progress=False)
    assert ray_cluster.is_initialized()  # the module's cluster is reused, not shut down
    assert comparable(sweep["tasks"]) == comparable(serial_sweep["tasks"])
    assert comparable(sweep["summary"]) == comparable(serial_sweep["summary"])


def test_outputs_written(serial_outputs, serial_sweep):
    table = serial_outputs["markdown"].read_text()
    for domain in DOMAINS:
        assert f"| {domain} | **trained (exact argmax)** |" in table
    assert "% of upper bound" in table and "Paired gain" in table and "evaluated exactly" in table
    assert serial_outputs["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = serial_sweep["summary"]
    assert set(summary["domains"]) == set(DOMAINS)
    for entry in summary["domains"].values():
        assert entry["seeds"] == [0, 1] and entry["best_baseline"] != "dqn_mip"
        assert len(entry["gain"]["per_seed"]) == 2


def _mean_and_se(per_episode: list[float]) -> tuple[float, float]:
    v = np.asarray(per_episode)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


def test_no_method_above_bound_or_exact_optimum(serial_sweep):
    for task in serial_sweep["tasks"]:
        bound, optimum = task["upper_bound"], task["exact_optimum"]
        if task["domain"] == "pull_limits":  # 12 states per arm: 12^6 joint states, beyond the exact DP
            assert optimum is None and "too large" in task["exact_skipped"]
            continue
        assert optimum is not None and optimum <= bound * (1 + 1e-7) + 1e-7
        for name, per_episode in task["per_episode_expected"].items():
            mean, se = _mean_and_se(per_episode)
            tol = 3 * se + 1e-6 * bound  # sampling error of the mean over episodes
            assert task["methods"][name]["pct_of_upper_bound"] <= 100 * (bound + tol) / bound, (task["domain"], name)
            assert mean <= optimum + tol, (task["domain"], task["seed"], name, mean, optimum)
        # the trained policy's exact value: at most the optimum, and what its episodes estimate (unless it decides
        # with LP-update, one LP per joint state: skipped beyond EXACT_LP_SOLVES, with the reason)
        if "trained_exact_skipped" in task:
            assert "lp_update" in task["trained_exact_skipped"] and task["training"]["kept_planner_name"] == "lp_update"
            continue
        value = task["trained_exact_value"]
        assert value <= optimum + 1e-9
        assert task["trained_pct_of_exact_optimum"] == pytest.approx(100 * value / optimum)
        mean, se = _mean_and_se(task["per_episode_expected"]["dqn_mip"])
        assert abs(mean - value) <= 4 * se + 1e-6 * bound, (task["domain"], task["seed"], mean, value)


def test_train_seeds_on_ray_matches_serial(ray_cluster, tmp_path):
    args = [
        "train",
        "capacity",
        "--n-arms",
        "4",
        "--budget",
        "2",
        "--episodes",
        "2",
        "--hidden",
        "8",
        "--seeds",
        "0",
        "1",
        "--dqn-option",
        "warm_start_samples=128",
        "warm_start_epochs=5",
        "--quiet",
    ]
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    for seed in (0, 1):
        a, b = tmp_path / "serial" / f"seed_{seed}", tmp_path / "ray" / f"seed_{seed}"
        assert (a / "weights.safetensors").read_bytes() == (b / "weights.safetensors").read_bytes()
    from engine import Engine

    assert Engine.load(tmp_path / "ray" / "seed_1").seed == 1
    # checkpoint-based evaluation (no --domains) still works, through the shared evaluate_engine
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path / "ray" / "seed_0"), "--episodes", "2", "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["scenario"] == "capacity" and {"dqn_mip", "iterative_dqn", "myopic"} <= set(result["methods"])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"domains": ("capacity", "nope")}, "domains"),
        ({"domains": ()}, "domains"),
        ({"seeds": (0, -1)}, "seeds"),
        ({"seeds": ()}, "seeds"),
        ({"eval_episodes": -5}, "eval_episodes"),
        ({"eval_episodes": 0}, "eval_episodes"),
        ({"train_episodes": -1}, "train_episodes"),
        ({"n_arms": 0}, "n_arms"),
        ({"time_limit": -1.0}, "time_limit"),
        ({"dqn": {"episodes": 5}}, "dqn"),
        ({"scenario": {"n_actions": 6}}, "scenario"),  # capacity/scheduling/routing take no n_actions
        ({"domains": ("multi_intervention",), "scenario": {"seed": 3}}, "scenario"),
        ({"methods": ("dqn_mip", "no_such_method")}, "methods"),
    ],
)
def test_bad_config_names_field(kwargs, field):
    with pytest.raises(InvalidInputError) as err:
        SweepConfig(**kwargs)
    assert err.value.field == field


def test_bad_executor_and_cli_inputs(capsys):
    with pytest.raises(InvalidInputError) as err:
        make_executor("threads")
    assert err.value.field == "executor"
    with pytest.raises(InvalidInputError) as err:
        make_executor("serial", address="auto")
    assert err.value.field == "ray_address"
    assert isinstance(make_executor("serial"), SerialExecutor)
    assert main(["evaluate", "--domains", "capacity", "--seeds", "-2"]) == 2
    assert "seeds" in capsys.readouterr().err
    assert main(["evaluate", "--domains", "atlantis"]) == 2
    assert "domains" in capsys.readouterr().err
    assert main(["evaluate", "--domains", "capacity", "--episodes", "-1"]) == 2
    assert "--episodes" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "checkpoints" in capsys.readouterr().err
    assert main(["evaluate", "--domains", "capacity", "--scenario-option", "n_actions"]) == 2
    assert "--scenario-option" in capsys.readouterr().err


def test_scenario_options_reach_the_generator():
    from engine.experiments.sweep import _run_task

    config = SweepConfig(
        domains=("multi_intervention",),
        seeds=(0,),
        n_arms=6,
        budget=3,
        horizon=4,
        train_episodes=0,
        eval_episodes=2,
        methods=("null",),
        scenario={"n_actions": 6},
        dqn={"warm_start_samples": 16, "warm_start_epochs": 1, "snapshots": 0},
    )
    result = _run_task(config.tasks()[0])
    assert result["n_actions"] == 6 and result["scenario"] == {"n_actions": 6}


def test_serial_executor_keeps_order():
    assert SerialExecutor(progress=False).map(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]


def test_sweep_result_is_json_plain(serial_sweep):
    task = serial_sweep["tasks"][0]
    assert {"upper_bound", "exact_optimum", "timings", "training", "methods"} <= set(task)


def _result(seed: int, per_episode: dict[str, list[float]], bound: float | None = 100.0) -> dict:
    """A sweep task's result as aggregate reads it (what run_task writes), from per-episode returns."""
    methods = {
        m: {
            "mean_expected_return": float(np.mean(v)),
            "pct_of_upper_bound": None if bound is None else 100 * float(np.mean(v)) / bound,
            "pct_of_exact_optimum": None,
            "decision_seconds": {"median": 0.001},
        }
        for m, v in per_episode.items()
    }
    return {
        "domain": "capacity",
        "seed": seed,
        "methods": methods,
        "per_episode_expected": per_episode,
        "upper_bound": bound,
        "exact_optimum": None,
    }


def test_the_summary_names_methods_missing_on_some_seeds_and_claims_no_interval_from_one_value():
    """A planner evaluated on some seeds only (it applies to some instances) is named, not averaged and not a
    crash; one seed (or one episode) gives no interval rather than a zero-width one; a mean above the bound is
    flagged; an unproven bound gives no percentage."""
    from engine.experiments.report import sweep_markdown
    from engine.experiments.sweep_summary import aggregate

    first = _result(0, {"dqn_mip": [50.0, 52.0], "whittle": [51.0, 53.0], "action_law": [50.0, 50.0]})
    second = _result(1, {"dqn_mip": [40.0, 44.0], "whittle": [41.0, 42.0]})
    summary = aggregate([first, second])
    entry = summary["domains"]["capacity"]
    assert set(entry["methods"]) == {"dqn_mip", "whittle"} and entry["methods_on_some_seeds"] == {"action_law": [0]}
    table = sweep_markdown(summary)
    assert "evaluated on seeds [0] only" in table
    one = aggregate([_result(0, {"dqn_mip": [101.0], "whittle": [99.0]})])
    e = one["domains"]["capacity"]
    assert e["methods"]["dqn_mip"]["ci95_seeds"] is None and e["methods"]["dqn_mip"]["ci95_episodes"] is None
    assert e["gain_over_best_planner"]["ci95_per_seed"] == [None]
    assert one["overall"]["seeds_significantly_worse_than_best_planner"] == 0
    table = sweep_markdown(one)
    assert "n/a (n = 1)" in table and "101.0\u2020" in table and "above the certified bound" in table
    unbounded = aggregate([_result(0, {"dqn_mip": [1.0, 2.0], "whittle": [1.0, 2.0]}, bound=None)])
    assert unbounded["domains"]["capacity"]["upper_bound"] is None
    assert "| - |" in sweep_markdown(unbounded)


def test_an_unproven_bound_is_no_percentage():
    from engine.analysis.evaluation import pct_of

    assert pct_of(10.0, float("inf")) is None and pct_of(10.0, 0.0) is None and pct_of(10.0, None) is None
    assert pct_of(10.0, 20.0) == 50.0


def test_the_evaluation_table_keeps_instances_apart_and_pairs_each_with_its_own_best_planner():
    from engine.experiments.report import markdown_table

    def res(version: str, shift: float, best: str) -> dict:
        per = {
            "dqn_mip": [10.0 + shift, 12.0 + shift],
            "whittle": [9.0 + shift, 13.0 + shift],
            "lagrangian": [8.0 + shift, 12.0 + shift],
        }
        return {
            "scenario": "capacity",
            "policy_version": version,
            "best_planner": best,
            "upper_bound": 100.0,
            "per_episode_expected": per,
            "methods": {m: {"decision_seconds": {"median": 0.001}} for m in per},
        }

    table = markdown_table([res("aaaaaaaa11", 0.0, "whittle"), res("bbbbbbbb22", 50.0, "whittle")])
    assert "| capacity (aaaaaaaa) |" in table and "| capacity (bbbbbbbb) |" in table
    assert "chosen and compared on them" in table
