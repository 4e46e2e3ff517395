"""Execute every notebook in ``notebooks/`` top to bottom with the small settings.

Notebooks are stored as jupytext percent-format ``.py`` files; each is converted to an nbformat notebook and
run by nbclient on a python3 kernel started from the current interpreter, with ``REDWOOD_NOTEBOOK_SMALL=1``
and matplotlib's Agg backend. A notebook that cannot run here (e.g. it needs a service that is not
installed) declares ``SKIP_EXECUTION = "reason"`` in a code cell line of its own and is skipped.
Per-notebook wall-clock times are printed (``pytest -s``) and written to ``notebook_times.json`` under
pytest's temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.py") if not p.name.startswith("_"))
TIMEOUT_PER_CELL = 240
_SKIP = re.compile(r'^SKIP_EXECUTION\s*=\s*"([^"]+)"', re.MULTILINE)
TIMES: dict[str, float] = {}


def _kernel_name() -> str:
    """``python3`` when its spec runs this interpreter; else a spec registered for it in a temp dir."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        if spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return "python3"
        if spec.argv and spec.argv[0] in ("python", "python3"):
            return "python3"
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    prefix = Path(os.environ.get("PYTEST_TMP_KERNELS", "/tmp/redwood_kernels"))
    install(prefix=str(prefix), kernel_name="redwood-notebooks")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")]
    )
    return "redwood-notebooks"


def _slowest_cells(notebook, top: int = 3) -> str:
    """``"#index: seconds"`` of the slowest code cells, from nbclient's execution timestamps."""
    from datetime import datetime

    spans = []
    for index, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            begin, end = (
                datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                for k in ("iopub.execute_input", "shell.execute_reply")
            )
            spans.append(((end - begin).total_seconds(), index))
    return ", ".join(f"#{i}: {t:.1f} s" for t, i in sorted(spans, reverse=True)[:top])


def test_notebooks_present() -> None:
    assert NOTEBOOKS, "no notebooks found"
    names = {p.stem for p in NOTEBOOKS}
    for required in (
        "capacity",
        "scheduling",
        "routing",
        "multi_intervention",
        "inventory",
        "maze",
        "restless_bandits",
        "combinatorial_bandits",
        "rest_service",
        "own_programme",
    ):
        assert required in names, f"missing notebook {required}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    text = path.read_text()
    if match := _SKIP.search(text):
        pytest.skip(f"{path.name}: {match.group(1)}")
    notebook = jupytext.reads(text, fmt="py:percent")
    out_dir = tmp_path_factory.mktemp(f"nb_{path.stem}")
    monkeypatch.setenv("REDWOOD_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("REDWOOD_NOTEBOOK_OUT", str(out_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    client = nbclient.NotebookClient(
        notebook,
        timeout=TIMEOUT_PER_CELL,
        kernel_name=_kernel_name(),
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    TIMES[path.stem] = round(seconds, 1)
    times_file = tmp_path_factory.getbasetemp() / "notebook_times.json"
    times_file.write_text(json.dumps(TIMES, indent=2))
    print(f"\n{path.stem}: {seconds:.1f} s (slowest cells: {_slowest_cells(notebook)})")
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, errors


def test_plots_helpers() -> None:
    """engine.experiments.plots on tiny inputs: moving average, CI table, and every plot draws without error (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from engine.experiments import plots
    from scenarios import make

    assert np.allclose(plots.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    rows = plots.returns_table({"a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.0]}, reference=4.0)
    assert rows[0]["mean"] == 2.0 and rows[0]["ci_low"] <= 2.0 <= rows[0]["ci_high"]
    assert rows[1]["% of bound"] == 50.0
    env = make("routing", n_arms=8, budget=2, seed=0, horizon=3)
    inst = env.instance

    class Pull:
        def act(self, states, time_to_go, rng):
            return inst.action_model().sample(rng)

    trace = plots.episode_trace(inst, Pull(), seed=0)
    assert trace["states"].shape == (3, 8) and trace["actions"].shape == (3, 8)
    action = trace["actions"][0]
    fig, axes = plt.subplots(2, 3)
    plots.plot_learning_curve([1, 2, 3], ax=axes[0, 0], reference={"bound": 4})
    plots.plot_returns({"a": [1, 2], "b": [3, 4]}, ax=axes[0, 1], upper_bound=5, optimum=4.5)
    plots.plot_decision_times({"a": [0.001, 0.002], "b": [0.0]}, ax=axes[0, 2])
    plots.plot_allocations(trace["actions"], trace["states"], ax=axes[1, 0])
    plots.plot_routing(inst, trace["states"][0], action, inst.walk(action), ax=axes[1, 1])
    maze = make("maze", n_actuators=4, seed=0, horizon=3)
    path = plots.rollout_positions(maze, lambda obs: np.ones(4, dtype=int), seed=0)
    plots.plot_maze(maze.instance, {"all on": path}, ax=axes[1, 2])
    plt.close(fig)
