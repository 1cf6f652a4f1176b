"""The deliver step on a backlog: one run whose whole delivery waits for the deliver step (no relay
beside its load), so the step starts with every row due. Compare HIRESYNC_RELAY_BESIDE_ROWS=0 (the
step relays alone) with the default 10,000 (a second process relays beside it):

    HIRESYNC_VAR=$(mktemp -d) HIRESYNC_RELAY_BESIDE_ROWS=0 PYTHONPATH=include:. .venv/bin/python bench/deliver_backlog.py 20000
    HIRESYNC_VAR=$(mktemp -d) PYTHONPATH=include:. .venv/bin/python bench/deliver_backlog.py 20000

(HIRESYNC_HUB_URL to a new PostgreSQL database for PostgreSQL.) Prints the run's and the deliver
step's seconds and CPU, as bench/end_to_end.py's worker measures them."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent)]
import end_to_end  # noqa: E402 - the worker this script reuses

from hiresync.pipeline import load  # noqa: E402

load.beside_when = lambda *args: nullcontext()  # no relay beside the load: everything waits for deliver
out = end_to_end.worker(argparse.Namespace(count=int(sys.argv[1]) if len(sys.argv) > 1 else 20000, mode="pipeline"))
print(json.dumps({"seconds": round(out["seconds"], 2), "deliver": round(out["stages"]["deliver"], 2),
                  "deliver_cpu": round(out["stages_cpu"]["deliver"], 2), "cpu": out["cpu"]}))
