"""Executors: run a pure function over a list of plain-data tasks, serially or on a Ray cluster.

Both answer ``map(fn, tasks) -> list`` in task order. A task and its result must be plain data (dicts,
lists, numbers, strings): a Ray worker builds its own environments, engines and solver models from the
task (highspy models cannot be pickled), so the same task gives the same result on any executor.

    with make_executor("ray", address="auto") as ex:
        results = ex.map(run_task, tasks)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tqdm.auto import tqdm

from scenarios.errors import InvalidInputError

EXECUTORS = ("serial", "ray")
_NICENESS_ENV = "RAY_worker_niceness"


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str = "tasks") -> list[Any]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Run the tasks one after the other in this process (the default)."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str = "tasks") -> list[Any]:
        return [fn(task) for task in tqdm(list(tasks), desc=desc, disable=not self.progress, unit="task")]

    def close(self) -> None:
        pass

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RayExecutor:
    """Run each task as one Ray task (1 CPU each).

    ``address=None`` starts a local cluster on this machine (``num_cpus`` workers, default all cores);
    ``"auto"`` joins the cluster started here by ``ray start --head``; ``"ray://host:10001"`` connects a
    client to a remote head. If Ray is already initialised in this process, that session is reused and
    left running on ``close``; otherwise ``close`` shuts down what this executor started. Workers of a
    local cluster start at, and every task runs at, ``niceness`` (default 0, as a serial run; ``None``
    keeps Ray's 15, under which workers get almost no CPU on a machine shared with other work).
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        progress: bool = True,
        runtime_env: dict | None = None,
        niceness: int | None = 0,
    ) -> None:
        if num_cpus is not None and num_cpus < 1:
            raise InvalidInputError("num_cpus", "must be at least 1")
        ray = _import_ray()
        self.progress, self.niceness = progress, niceness
        self._owns = not ray.is_initialized()
        if self._owns:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = num_cpus
            if runtime_env:
                kwargs["runtime_env"] = runtime_env
            previous = os.environ.get(_NICENESS_ENV)
            if address is None and niceness is not None and previous is None:
                os.environ[_NICENESS_ENV] = str(niceness)  # read by the local raylet it starts
            try:
                ray.init(address=address, **kwargs)
            finally:
                if previous is None:
                    os.environ.pop(_NICENESS_ENV, None)

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str = "tasks") -> list[Any]:
        ray = _import_ray()
        remote = ray.remote(num_cpus=1, max_retries=0)(_call_at_niceness)
        refs = [remote.remote(fn, task, self.niceness) for task in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        out: list[Any] = [None] * len(refs)
        pending = list(refs)
        with tqdm(total=len(refs), desc=desc, disable=not self.progress, unit="task") as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    out[index[ref]] = ray.get(ref)
                    bar.update(1)
        return out

    def close(self) -> None:
        if self._owns:
            ray = _import_ray()
            if ray.is_initialized():
                ray.shutdown()
            self._owns = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(
    name: str = "serial", address: str | None = None, num_cpus: int | None = None, progress: bool = True
) -> SerialExecutor | RayExecutor:
    """``"serial"`` or ``"ray"`` (local cluster when ``address`` is None, else that cluster)."""
    if name == "serial":
        if address is not None:
            raise InvalidInputError("ray_address", "only meaningful with the ray executor")
        return SerialExecutor(progress)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus, progress=progress)
    raise InvalidInputError("executor", f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")


def _call_at_niceness(fn: Callable[[Any], Any], task: Any, niceness: int | None) -> Any:
    """Run ``fn(task)`` in a Ray worker at ``niceness``: Ray starts workers at niceness 15, which starves
    them on a machine shared with other work (a no-op where lowering it is not permitted)."""
    if niceness is not None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
    return fn(task)


def _import_ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "the ray executor needs Ray: pip install 'redwood[distributed]' (or pip install ray)"
        ) from exc
    return ray
