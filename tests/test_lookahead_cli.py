"""``redwood train --lookahead``, ``decide`` and ``evaluate`` on a lookahead checkpoint."""

from __future__ import annotations

import json

import pytest

from api.cli import main


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_decide_and_evaluate_a_lookahead_policy(tmp_path, capsys):
    out = tmp_path / "look"
    options = ["rollout_episodes=20", "epochs=3", "sweeps=1", "samples=4", "validation_episodes=4"]
    argv = ["train", "coverage", "--n-arms", "4", "--budget", "2", "--out", str(out), "--quiet"]
    code, text, _ = _run([*argv, "--lookahead", "--lookahead-option", *options], capsys)
    assert code == 0
    trained = json.loads(text)
    assert trained["kind"] == "lookahead" and trained["kept"] in ("lookahead", "planner")
    code, text, _ = _run(["decide", str(out), "--state", "0,1,2,3,5"], capsys)
    assert code == 0
    decision = json.loads(text)
    assert decision["policy_version"] == trained["policy_version"] and sum(decision["action"]) <= 2
    code, text, _ = _run(
        ["evaluate", str(out), "--episodes", "3", "--methods", "lookahead", "whittle", "--quiet"], capsys
    )
    assert code == 0
    assert "planner + learned lookahead" in text


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--lookahead-option", "samples=2"], "--lookahead-option"),  # without --lookahead
        (["--lookahead", "--lookahead-option", "rollouts=3"], "--lookahead-option"),  # unknown setting
        (["--lookahead", "--lookahead-option", "samples=0"], "--lookahead-option"),
        (["--lookahead", "--episodes", "5"], "--episodes"),
    ],
)
def test_bad_lookahead_arguments_name_the_flag(tmp_path, capsys, extra, flag):
    argv = ["train", "coverage", "--n-arms", "4", "--budget", "2", "--out", str(tmp_path / "x")]
    code, _, err = _run([*argv, *extra], capsys)
    assert code == 2
    assert flag in err
    assert not (tmp_path / "x").exists()
