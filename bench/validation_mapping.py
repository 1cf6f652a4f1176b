"""Throughput of validation and mapping on simulated AIView results, beside plain JSON parsing.

In one process, no database, no HTTP: the stages the pipeline runs between extract and load.
  parse       json.loads of every payload (the baseline: the least any stage must do)
  map         MappingSpec.map, payload -> canonical record (normalisers, masks on errors)
  raw suite   frame of raw values + the GX suite, per window of rows (contract/raw_suite.py), and
              beside it the same in 2,000-row frames (one micro-batch each, as before the windows)
  canonical   frame of canonical values + the canonical GX suite, per window (canonical_suite.py)
Each figure is the median of --repeat runs, in records per second, with its ratio to the baseline.
GX's one-off import and context set-up are paid in a warm-up, not counted.

    make bench                                       # 100,000 results
    .venv/bin/python bench/validation_mapping.py --count 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "include")]


def payload_bytes(count: int) -> list[bytes]:
    from simulators.aiview import vendor_json
    from simulators.dataset import InterviewDataset

    dataset = InterviewDataset(3, result_prefix="AV-", candidate_prefix="AVC-",
                               video_base="https://video.aiview.example/v/",
                               report_base="https://report.aiview.example/r/")
    return [vendor_json(res) for res in dataset.results(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["GX_ANALYTICS_ENABLED"] = "False"

    import pandas as pd

    from hiresync.contract import canonical_suite
    from hiresync.mapping.spec import MappingSpec
    from hiresync.contract.raw_suite import KEY, ROW, checks_for, frame_columns
    from hiresync.contract.gx import WINDOW_ROWS, validate_frame

    spec = MappingSpec.load(REPO / "mappings/aiview.yaml")
    print(f"generating {args.count:,} AIView payloads ...", flush=True)
    bodies = payload_bytes(args.count)
    payloads = [json.loads(b) for b in bodies]
    mapped = [(i, spec.map(p)[0]) for i, p in enumerate(payloads)]
    assert all(rec is not None for _, rec in mapped), "the simulated payloads are clean: all must map"

    def parse():
        for b in bodies:
            json.loads(b)

    def map_all():
        for p in payloads:
            spec.map(p)

    def raw_suite_in(size: int):
        """The raw suite as the pipeline runs it: one GX validation per `size` rows."""
        def run():
            for start in range(0, len(payloads), size):
                part = payloads[start:start + size]
                frame = pd.DataFrame(frame_columns(part, spec, list(range(start, start + len(part)))))
                outcome = validate_frame(frame, ROW, checks_for(spec), suite_name="bench.raw")
                assert not outcome.failures and KEY in frame.columns
        return run

    def canonical():
        for start in range(0, len(mapped), WINDOW_ROWS):
            problems, _ = canonical_suite.validate_records(mapped[start:start + WINDOW_ROWS], spec,
                                                           suite_name="bench.canonical")
            assert not problems

    # Warm-up on a slice: imports GX and builds its context once.
    small = payloads[:200]
    validate_frame(pd.DataFrame(frame_columns(small, spec)), ROW, checks_for(spec), suite_name="warmup")
    canonical_suite.validate_records(mapped[:200], spec, suite_name="warmup")

    # The suites judge windows of WINDOW_ROWS (contract/gx.py); beside them, the same suite in
    # frames of one 2,000-row micro-batch, as it ran before: GX's fixed cost per validation.
    stages = (("parse (baseline)", parse), ("map", map_all),
              ("raw suite (GX)", raw_suite_in(WINDOW_ROWS)), ("canonical suite (GX)", canonical))
    per_batch = ("raw suite, 2,000-row frames", raw_suite_in(2000))
    medians = {}
    for name, fn in (*stages, per_batch):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        medians[name] = statistics.median(times)
        print(f"  {name:<22} {args.count / medians[name]:>12,.0f} records/s   (median of {args.repeat}: "
              f"{medians[name]:.2f} s)", flush=True)

    frames = medians.pop(per_batch[0])
    print(f"\nraw suite in frames of {WINDOW_ROWS:,} rows vs 2,000: {medians['raw suite (GX)']:.2f} s vs "
          f"{frames:.2f} s ({frames / medians['raw suite (GX)']:.1f}x)")
    base = medians["parse (baseline)"]
    print(f"\nvalidation and mapping on {args.count:,} results, records/s (ratio to json parsing):")
    for name, seconds in medians.items():
        print(f"  {name:<22} {args.count / seconds:>12,.0f}   {base / seconds:>6.3f}x")
    between = sum(v for k, v in medians.items() if k != "parse (baseline)")
    print(f"  {'map + both suites':<22} {args.count / between:>12,.0f}   {base / between:>6.3f}x")


if __name__ == "__main__":
    main()
