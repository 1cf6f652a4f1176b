"""A run's steps work with what the process imported frozen out of the cyclic garbage collector
(hiresync/heap.py), and nothing stays frozen after it; memory a step freed goes back to the system."""

from __future__ import annotations

import gc
import re
import weakref
from pathlib import Path

from hiresync.heap import frozen_heap, give_back_free_memory
from hiresync.pipeline import runner


def test_frozen_heap_unfreezes_when_done_and_frozen_garbage_is_then_collected():
    class Cycle:
        def __init__(self):
            self.me = self

    gc.unfreeze()
    garbage = weakref.ref(Cycle())  # a cycle: only the collector frees it
    with frozen_heap():
        assert gc.get_freeze_count() > 1000  # the modules this test session imported, and the cycle
        gc.collect()
        assert garbage() is not None  # frozen: the collector does not look at it
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert garbage() is None  # unfrozen with the rest, and freed


def test_every_step_of_a_run_sees_the_imports_frozen_and_none_after_it(settings, aiview, monkeypatch):
    seen: dict[str, int] = {}

    def probed(name, step):
        def run(ctx):
            seen[name] = gc.get_freeze_count()
            return step(ctx)
        return run

    monkeypatch.setattr(runner, "STEPS", tuple((name, probed(name, step)) for name, step in runner.STEPS))
    assert runner.run_source("aiview", settings)["status"] == "success"
    assert set(seen) == {"extract", "validate", "map", "load", "deliver"}
    assert all(count > 1000 for count in seen.values()), seen
    assert gc.get_freeze_count() == 0


def _rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) / 1024


def test_memory_freed_between_steps_goes_back_to_the_system():
    """Payload-sized blocks (the C heap's, not Python's small-object arenas) freed among blocks still
    in use stay in the process until it is trimmed: what a step's high-water mark left behind."""
    give_back_free_memory()
    kept, freed = [], []
    for i in range(120_000):  # about 180 MB of 1.5 KB blocks, every tenth kept
        (kept if i % 10 == 0 else freed).append(bytes(1500 + i % 7))
    del freed
    before = _rss_mb()
    give_back_free_memory()
    assert before - _rss_mb() > 50, (before, _rss_mb())  # most of the ~160 MB freed is returned
    assert len(kept) == 12_000 and all(len(b) >= 1500 for b in kept)  # and what is in use is untouched
