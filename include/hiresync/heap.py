"""The objects a run starts with, kept out of Python's cyclic garbage collector while it runs;
memory freed between steps, handed back.

A pipeline process holds a few hundred thousand objects before it touches a record: the modules of
Airflow, SQLAlchemy, pandas and Great Expectations. A run allocates millions more (each batch's
parsed payloads, GX's frames), and every few hundred thousand allocations the collector walks the
whole heap, those modules included. With them frozen (`gc.freeze()`: objects the collector no
longer examines; reference counting still frees them) a 20,000-result run is about a tenth faster
(docs/benchmarks.md says how that was measured). The heap is unfrozen when the run ends, so a
long-lived process (a test session, a worker) keeps nothing frozen, and any garbage frozen with the
rest is collected then. No collection
before the freeze: with Airflow loaded one takes about 0.3 s, which every task of a small run would
pay (`bench/dag_tasks.py`). What a process imports in the middle of a run (Great
Expectations, at a run's first validation) or keeps for all its life (the relay beside the load)
joins them with `freeze_imports()`.

And memory a step has freed, handed back to the system (`give_back_free_memory`), so that a step's
high-water mark does not stay with the process through the steps after it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from contextlib import contextmanager
from functools import cache
from typing import Iterator


@contextmanager
def frozen_heap() -> Iterator[None]:
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def freeze_imports() -> None:
    """What this process has imported so far lives as long as the process: out of the collector's
    walks from now on (a run's `frozen_heap` unfreezes it with the rest when it ends)."""
    gc.freeze()


def give_back_free_memory() -> None:
    """Hand the C heap's free memory back to the system (glibc's `malloc_trim`; elsewhere nothing).

    A batch's large buffers (a staged batch's decrypted bytes, a payload's text, the map helper's
    pickled batches, the driver's rows) come from the C heap, and glibc keeps what is freed for
    reuse, in the main heap and in each thread's arena (the map helper's receiver, the relay's),
    returning it only from the top of the heap. Between steps and between the load's batches,
    when the batch before is freed, this keeps a process from carrying a step's high-water mark
    into the next one (the load's RSS is what the relay beside it adds to)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
