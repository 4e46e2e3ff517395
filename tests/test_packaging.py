"""Packaging facts the product relies on."""

from __future__ import annotations

import subprocess
import sys


def test_ortools_and_highspy_import_in_one_process():
    """ortools 9.15 and highspy >= 1.15 clash (google/or-tools#5246); the pinned versions must not."""
    code = (
        "import highspy, ortools\n"
        "from ortools.linear_solver import pywraplp\n"
        "h = highspy.Highs(); h.setOptionValue('output_flag', False)\n"
        "s = pywraplp.Solver.CreateSolver('SCIP') or pywraplp.Solver.CreateSolver('CBC')\n"
        "x = s.IntVar(0, 3, 'x'); s.Maximize(x); assert s.Solve() == 0\n"
        "h.addVar(0, 1); h.changeColCost(0, -1); h.run(); print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_torch_is_the_pinned_cpu_build():
    import torch

    assert torch.__version__.startswith("2.13.0")


def test_console_script_lists_scenarios():
    out = subprocess.run([sys.executable, "-m", "api.cli", "scenarios"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "capacity" in out.stdout
