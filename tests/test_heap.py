"""A run's steps work with what the process imported frozen out of the cyclic garbage collector
(hiresync/heap.py), and nothing stays frozen after it."""

from __future__ import annotations

import gc

from hiresync.pipeline import runner
from hiresync.heap import frozen_heap


def test_frozen_heap_collects_first_and_unfreezes_when_done():
    class Cycle:
        def __init__(self):
            self.me = self

    Cycle()  # garbage only a collection frees
    gc.unfreeze()
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules this test session imported
        assert not any(type(o) is Cycle for o in gc.get_objects(generation=2))  # collected, not frozen
    assert gc.get_freeze_count() == 0


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
