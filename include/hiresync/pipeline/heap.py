"""The objects a run starts with, kept out of Python's cyclic garbage collector while it runs.

A pipeline process holds a few hundred thousand objects before it touches a record: the modules of
Airflow, SQLAlchemy, pandas and Great Expectations. A run allocates millions more (each batch's
parsed payloads, GX's frames), and every few hundred thousand allocations the collector walks the
whole heap, those modules included: 13% of a 20,000-result run was collection, a third of that
with them frozen (`gc.freeze()`: objects the collector no longer examines; reference counting still
frees them). The heap is collected once before it is frozen, so no garbage is kept, and unfrozen
when the run ends, so a long-lived process (a test session, a worker) does not keep anything frozen
that a later cycle would leave behind. Great Expectations, imported by the first validation of a
run, freezes its own objects once imported (contract/gx.py).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def frozen_heap() -> Iterator[None]:
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()

