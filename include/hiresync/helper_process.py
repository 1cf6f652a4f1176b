"""A helper process beside a step: the machine's other core, for work the step can hand off.

A new interpreter, not a fork: the parent holds database connections and, in Airflow, a task
runner. Not multiprocessing's "spawn" either: it runs the parent's main script again in the child,
and in an Airflow worker that script is `airflow` (all of Airflow imported into a process that
needs none of it). The child gets the parent's import path first (hiresync is not importable before
it: in Airflow it comes from the plugins and DAGs folders), then calls `module.function(*args,
conn)` with the other end of a pipe. Starting one costs about a second, which a small run would
feel: callers start one only for large runs.
"""

from __future__ import annotations

import subprocess
import sys
from multiprocessing.connection import Connection, Pipe
from typing import Any

# The module and function are on the command line, so `ps` shows what a helper is.
_START = ("import sys, importlib; from multiprocessing.connection import Connection; "
          "conn = Connection(int(sys.argv[1])); sys.path[:0] = conn.recv(); module, function = sys.argv[2].split(':'); "
          "getattr(importlib.import_module(module), function)(*conn.recv(), conn)")


def start_helper(module: str, function: str, *args: Any) -> tuple[subprocess.Popen, Connection]:
    """Start `module.function(*args, conn)` in a new interpreter; returns the process and this end
    of its pipe (the helper sees the pipe close when this process ends, killed or not)."""
    mine, theirs = Pipe()
    process = subprocess.Popen([sys.executable, "-c", _START, str(theirs.fileno()), f"{module}:{function}"],
                               pass_fds=[theirs.fileno()])
    theirs.close()
    mine.send([p for p in sys.path if p])  # where this process finds hiresync and its connectors
    mine.send(args)
    return process, mine
