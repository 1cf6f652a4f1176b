"""A run's steps work with what the process imported frozen out of the cyclic garbage collector
(hiresync/heap.py), and nothing stays frozen after it."""

from __future__ import annotations

import gc
import weakref

from hiresync.heap import frozen_heap
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
