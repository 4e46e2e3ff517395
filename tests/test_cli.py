"""The ``redwood`` command line (issue 20): fast start-up (no heavy import to parse or list scenarios), every
argument documented with its choices and defaults, and every bad or contradictory command line refused with
ONE line on stderr naming the argument, exit status 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main
from api.cli_args import build_parser, subparser

HEAVY = ("torch", "engine", "fastapi", "ray", "numpy", "scipy", "uvicorn", "sqlalchemy", "scenarios")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _refused(argv: list[str], capsys, *names: str) -> str:
    """``argv`` exits 2 with one stderr line that names each of ``names``."""
    code, out, err = _run(argv, capsys)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"redwood {argv[0]}: error: "), lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ckpt"
    code = main(
        [
            "train",
            "capacity",
            "--n-arms",
            "3",
            "--budget",
            "2",
            "--episodes",
            "1",
            "--hidden",
            "4",
            "--dqn-option",
            "warm_start_samples=32",
            "warm_start_epochs=1",
            "snapshots=1",
            "validation_episodes=1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


# ------------------------------------------------------------------------------------------ 1. start-up
@pytest.mark.parametrize("argv", [["--help"], ["scenarios"], ["bench", "--help"]])
def test_parsing_and_listing_scenarios_import_nothing_heavy(argv):
    code = "\n".join(
        [
            "import sys",
            "from api.cli import main",
            f"code = main({argv!r})",
            f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))",
            "print('HEAVY', heavy, code, file=sys.stderr)",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stderr.strip().splitlines()[-1] == "HEAVY [] 0", out.stderr


def test_scenarios_lists_the_registry_with_descriptions():
    from scenarios import instance_class, list_scenarios

    out = subprocess.run([sys.executable, "-m", "api.cli", "scenarios"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list_scenarios()
    for line in lines:
        name, doc = line.split(maxsplit=1)
        assert doc == instance_class(name).__doc__.strip().splitlines()[0]


# ------------------------------------------------------------------------------------ 3. documentation
def _help(argv: list[str], capsys) -> str:
    code, out, _ = _run([*argv, "--help"], capsys)
    assert code == 0
    return " ".join(out.split())  # argparse wraps lines


def test_every_argument_has_help_and_registry_choices_are_listed(capsys):
    from api.cli_serve import build_serve_parser
    from engine.analysis.evaluation import method_names
    from engine.sequoia.selectors import SELECTORS
    from scenarios import list_scenarios

    parser = build_parser()
    commands = ["train", "evaluate", "decide", "quickstart", "bench", "scenarios"]
    parsers = [subparser(parser, c) for c in commands] + [build_serve_parser()]
    for p in parsers:
        for action in p._actions:
            assert action.help, (p.prog, action.dest)
    text = _help(["decide"], capsys)
    assert "choices: " + ", ".join(SELECTORS) in text and "solver time limit in seconds" in text
    text = _help(["train"], capsys)
    assert "choices: " + ", ".join(list_scenarios()) in text
    assert "number of arms J (default: 20)" in text and "(default: 16,32)" in text
    text = _help(["evaluate"], capsys)
    assert "choices: " + ", ".join(method_names()) in text and "in seconds" in text
    assert "(default: 50)" in text


# ------------------------------------------------------------------------------------- 2. decide states
@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("1,2,nan", "entry 3 is 'nan', expected an integer"),
        ("abc", "entry 1 is 'abc', expected an integer"),
        ("1.5,0,3", "entry 1 is '1.5', expected an integer"),
        ("[1,2,", "invalid JSON list"),
        ("[1, 2.5]", "entry 2 is 2.5, expected an integer"),
        ("1,,2", "entry 2 is '', expected an integer"),
    ],
)
def test_decide_bad_state_is_one_line(state, reason, tmp_path, capsys):
    line = _refused(["decide", str(tmp_path), "--state", state], capsys, "argument --state")
    assert line.split("argument --state: ")[1].startswith(reason), line


def test_decide_library_errors_name_the_argument(checkpoint, capsys):
    _refused(["decide", str(checkpoint), "--state", "0,0"], capsys, "argument --state", "2")
    _refused(["decide", str(checkpoint), "--state", "-1,0,0,3"], capsys, "argument --state", "-1")
    _refused(["decide", str(checkpoint), "--state", "0,0,0,3", "--selector", "best"], capsys, "--selector", "mip")
    _refused(
        ["decide", str(checkpoint), "--state", "0,0,0,3", "--selector", "greedy", "--time-limit", "1"],
        capsys,
        "--time-limit",
        "'greedy'",
        "mip",
    )
    code, out, _ = _run(["decide", str(checkpoint), "--state", "[0, 1, 0, 3]", "--selector", "greedy"], capsys)
    assert code == 0 and len(json.loads(out)["action"]) == 3


# ------------------------------------------------------------------------- 4. contradictory arguments
def test_conflicting_arguments_are_refused(checkpoint, tmp_path, capsys):
    instance = tmp_path / "instance.json"
    instance.write_text(json.dumps(json.loads((checkpoint / "config.json").read_text())["instance"]))
    out = str(tmp_path / "out")
    _refused(
        ["train", "capacity", "--instance", str(instance), "--n-arms", "10", "--out", out],
        capsys,
        "--n-arms",
        "--instance",
    )
    _refused(
        ["train", "capacity", "--instance", str(instance), "--budget", "2", "--out", out],
        capsys,
        "--budget",
        "--instance",
    )
    _refused(["train", "capacity", "--seeds", "0", "1", "--seed", "3", "--out", out], capsys, "--seed", "--seeds")
    _refused(["train", "capacity", "--seeds", "0", "--threads", "2", "--out", out], capsys, "--threads", "--seeds")
    _refused(["train", "capacity", "--executor", "ray", "--out", out], capsys, "--executor", "--seeds")
    _refused(
        ["train", "capacity", "--seeds", "0", "--ray-address", "auto", "--out", out],
        capsys,
        "--ray-address",
        "--executor ray",
    )
    _refused(["train", "maze", "--n-arms", "5", "--out", out], capsys, "--n-arms", "n_actuators")
    _refused(["train", "capacity", "--dqn-option", "episodes=3", "--out", out], capsys, "--dqn-option", "--episodes")
    _refused(["evaluate", str(checkpoint), "--n-arms", "5"], capsys, "--n-arms", "--domains")
    _refused(["evaluate", str(checkpoint), "--executor", "ray"], capsys, "--executor", "--domains")
    _refused(["evaluate", str(checkpoint), "--domains", "capacity"], capsys, "CHECKPOINT", "--domains")
    _refused(["evaluate", "--domains", "capacity", "--seed", "1", "--seeds", "2"], capsys, "--seed", "--seeds")
    _refused(
        ["evaluate", str(checkpoint), "--methods", "myopic", "--time-limit", "2"], capsys, "--time-limit", "dqn_mip"
    )
    assert not Path(out).exists()


# -------------------------------------------------------------------------------- 5. API key scopes
def test_create_key_requires_scopes(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    line = _refused(["serve", "--create-key", "ops", "--db", db], capsys, "--create-key", "--scopes")
    assert not (tmp_path / "keys.db").exists() and "read" in line
    _refused(["serve", "--scopes", "read", "--db", db], capsys, "--scopes", "--create-key")
    _refused(["serve", "--create-key", "ops", "--scopes", "read,root", "--db", db], capsys, "--scopes", "root")
    _refused(["serve", "--list-keys", "--port", "9000", "--db", db], capsys, "--port", "--list-keys")
    code, out, _ = _run(["serve", "--create-key", "ops", "--scopes", "read", "--db", db], capsys)
    assert code == 0 and json.loads(out.splitlines()[0])["scopes"] == ["read"]


# ----------------------------------------------------------------------------------- 6. bad values
@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["train", "capacity", "--episodes", "0", "--out", "x"], ["--episodes", ">= 1"]),
        (["train", "capacity", "--n-arms", "-3", "--out", "x"], ["--n-arms", ">= 1"]),
        (["train", "capacity", "--seed", "-1", "--out", "x"], ["--seed", ">= 0"]),
        (["train", "capacity", "--hidden", "8,x", "--out", "x"], ["--hidden"]),
        (["train", "capacity", "--threads", "0", "--out", "x"], ["--threads"]),
        (["train", "capacity", "--instance", "/no/such.json", "--out", "x"], ["--instance", "no such file"]),
        (["train", "capacity", "--dqn-option", "lr=fast", "--out", "x"], ["--dqn-option", "lr"]),
        (["train", "capacity", "--dqn-option", "no_such_field=1", "--out", "x"], ["--dqn-option", "DQNConfig"]),
        (["train", "atlantis", "--out", "x"], ["SCENARIO", "capacity"]),
        (["train", "capacity"], ["--out"]),
        (["train", "capacity", "--out", "x", "--bogus"], ["--bogus"]),
        (["evaluate"], ["checkpoints"]),
        (["evaluate", "/no/such/dir"], ["CHECKPOINT", "no such directory"]),
        (["evaluate", "--domains", "capacity", "--episodes", "0"], ["--episodes"]),
        (["evaluate", "--domains", "capacity", "--methods", "oracle"], ["--methods", "dqn_mip"]),
        (["evaluate", "--domains", "capacity", "--time-limit", "-1"], ["--time-limit", "seconds"]),
        (["evaluate", "--domains", "capacity", "--json", "/no/such/dir/out.json"], ["--json", "does not exist"]),
        (["evaluate", "--domains", "capacity", "--scenario-option", "n_actions"], ["--scenario-option"]),
        (["decide", "/no/such/dir", "--state", "0"], ["CHECKPOINT"]),
        (["decide", ".", "--state", "0,1", "--time-limit", "0"], ["--time-limit", "seconds"]),
        (["quickstart", "--eval-episodes", "0"], ["--eval-episodes"]),
        (["bench", "--dir", "/no/such/dir"], ["--dir"]),
        (["serve", "--port", "70000"], ["--port"]),
        (["serve", "--workers", "0"], ["--workers"]),
        (["serve", "--log-level", "loud"], ["--log-level"]),
        (["scenarios", "extra"], ["unrecognized arguments"]),
    ],
)
def test_bad_values_are_one_line(argv, names, capsys):
    _refused(argv, capsys, *names)


def test_not_a_checkpoint_directory(tmp_path, capsys):
    _refused(["decide", str(tmp_path), "--state", "0,1"], capsys, "CHECKPOINT", "not a checkpoint directory")
    (tmp_path / "config.json").write_text("{")
    (tmp_path / "weights.safetensors").write_bytes(b"")
    _refused(["evaluate", str(tmp_path)], capsys, "CHECKPOINT", "not valid JSON")
    not_dir = tmp_path / "config.json"
    _refused(["train", "capacity", "--out", str(not_dir)], capsys, "--out", "not a directory")


def test_bench_unknown_name(capsys):
    _refused(["bench", "no_such_bench", "--dir", str(Path(__file__).parents[1] / "bench")], capsys, "NAME", "cli")


def test_decide_prints_the_assignment(checkpoint, capsys):
    """Standard output stays one JSON line (with the certificate); the operator's lines go to standard error."""
    code, out, err = _run(["decide", str(checkpoint), "--state", "[3, 3, 3, 3]"], capsys)
    decision = json.loads(out)
    workers = decision["assignment"]["workers"]
    assert code == 0 and sorted(a for arms in workers.values() for a in arms) == [
        i for i, x in enumerate(decision["action"]) if x
    ]
    for w, arms in workers.items():
        assert f"worker {w}: arms {', '.join(map(str, arms))}" in err


def test_assignment_lines_cover_every_block_kind():
    from api.cli_evaluate import assignment_lines

    lines = assignment_lines(
        {
            "slots": [{"worker": 0, "slot": 2, "arm": 5}],
            "route": [1, 4, 1],
            "interventions": {"0": [2, 3]},
            "constraints[0]": {"x": 1},
        }
    )
    assert lines == [
        "worker 0, slot 2: arm 5",
        "route: 1 -> 4 -> 1",
        "intervention 0: reaches arms 2, 3",
        'constraints[0]: {"x": 1}',
    ]
