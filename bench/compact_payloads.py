"""`hiresync source compact-payloads` on a hub whose payloads were all stored without a dictionary
(a hub upgraded with its history): one run of N results is loaded with dictionaries switched off,
then its source's payloads are compacted. Prints the compaction's seconds, payloads per second and
bytes per payload before and after, as one JSON line:

    HIRESYNC_VAR=$(mktemp -d) PYTHONPATH=include:. .venv/bin/python bench/compact_payloads.py 100000

(HIRESYNC_HUB_URL to a new PostgreSQL database for PostgreSQL.)"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent)]
import end_to_end  # noqa: E402 - the worker this script reuses

from hiresync.config.settings import Settings  # noqa: E402
from hiresync.privacy import payloads  # noqa: E402
from hiresync.privacy.keys import hub_keys  # noqa: E402
from hiresync.tools.compact import compact_payloads  # noqa: E402

count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
train_from = payloads.TRAIN_FROM
payloads.TRAIN_FROM = sys.maxsize  # the load trains no dictionary: every payload is compressed alone
end_to_end.worker(argparse.Namespace(count=count, mode="pipeline"))
payloads.TRAIN_FROM = train_from

settings = Settings.from_env()
started = time.perf_counter()
done = compact_payloads(settings, hub_keys(settings), "aiview")
seconds = time.perf_counter() - started
print(json.dumps({"payloads": done.compacted, "seconds": round(seconds, 2),
                  "per_second": round(done.compacted / seconds), "bytes_before": round(done.bytes_before / done.compacted),
                  "bytes_after": round(done.bytes_after / done.compacted)}))
