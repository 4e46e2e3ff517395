"""Entry point of a job's child process: ``python -m api.service.job_worker`` with the job's arguments as JSON
on standard input (see :func:`api.service.job_child.child_main`). A fresh interpreter, not a fork or a
``multiprocessing`` spawn, so nothing of the server process (or of a caller's unguarded main module) runs in it."""

from __future__ import annotations

import json
import sys

if __name__ == "__main__":
    from api.service.job_child import child_main

    child_main(json.loads(sys.stdin.read()))
