"""Jobs on a Ray cluster: ``REDWOOD_JOB_EXECUTOR=ray`` (with ``REDWOOD_JOB_RAY_ADDRESS``: empty for a local
cluster started by the server, ``auto`` or ``ray://host:10001`` for an existing one).

A job is then one Ray task running the same :func:`api.service.job_child.child_main` as a local child process;
:class:`RayJobProcess` gives the runner the few ``subprocess.Popen`` verbs it uses (``poll``, ``kill``,
``wait``, ``pid``), so leases, cancellation, re-queueing and recovery are the local path's, unchanged. The task
writes its progress and result to the database itself, as a local child does.
"""

from __future__ import annotations

import threading
import time
from typing import Any

_LOCK = threading.Lock()


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:  # the service refuses to start rather than queue jobs nobody can run
        raise RuntimeError("REDWOOD_JOB_EXECUTOR=ray needs Ray: pip install 'redwood[distributed]'") from err
    return ray


def ensure_ray(address: str, num_cpus: int | None = None) -> bool:
    """Connect this server process to Ray once (a local cluster when ``address`` is empty); True when this
    call connected it (the caller then shuts it down)."""
    ray = _ray()
    with _LOCK:
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
        return True


def shutdown_ray() -> None:
    ray = _ray()
    with _LOCK:
        if ray.is_initialized():
            ray.shutdown()


def _run_job(args: dict) -> int:
    """The Ray task: a job's child entry point (imported inside, in the worker)."""
    from api.service.job_child import child_main

    child_main(args)
    return 0


class RayJobProcess:
    """One job as a Ray task, seen through the ``Popen`` verbs the job runner uses."""

    def __init__(self, args: dict) -> None:
        ray = _ray()
        remote = ray.remote(num_cpus=1, max_retries=0)(_run_job)
        self._ref = remote.remote(args)
        self.pid: int | None = None
        self.returncode: int | None = None
        self.tail = ""

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        ray = _ray()
        done, _ = ray.wait([self._ref], timeout=0)
        if not done:
            return None
        try:
            ray.get(self._ref)
            self.returncode = 0
        except Exception as exc:  # a killed worker, SystemExit in the task, or an error outside child_main
            self.returncode = 1
            self.tail = f"{type(exc).__name__}: {exc}"[-1500:]
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            _ray().cancel(self._ref, force=True)

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return self.returncode
