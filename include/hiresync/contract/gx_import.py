"""Import Great Expectations without the two libraries only one unused expectation needs.

`import great_expectations` imports every core expectation. One of them,
ExpectColumnKlDivergenceToBeLessThan, imports scipy.stats and altair at module level, and those two
are about 0.6 s of GX's 2.2 s import on this machine kind: paid by every task process that
validates. HireSync's suites never use that expectation, so both are put in place first as
stand-ins that import the real module on first use (any attribute, dunders included). Whatever
does use them, that expectation or a custom one, still gets the real module, a moment later.

This reaches into how GX imports, not what it documents: `tests/test_gx_import.py` checks that
the stand-ins stay unloaded through a validation and load on first use, so an upgrade that
changes this shows up there.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import types

DEFERRED = ("scipy.stats", "altair")

_lock = threading.Lock()


class _Deferred(types.ModuleType):
    """Stands in sys.modules for a module until something reads an attribute of it."""

    def __getattr__(self, attr: str):  # only called for what the stand-in itself lacks
        return getattr(_load(self), attr)


def _load(stand_in: _Deferred) -> types.ModuleType:
    with _lock:
        real = stand_in.__dict__.get("_real")
        if real is None:
            name = stand_in.__name__
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]  # so that the import below loads the real module
            try:
                real = importlib.import_module(name)
            except BaseException:
                sys.modules.setdefault(name, stand_in)
                raise
            stand_in.__dict__["_real"] = real
        return real


def _defer(name: str) -> None:
    if name in sys.modules or importlib.util.find_spec(name.partition(".")[0]) is None:
        return  # already real, or not installed: GX's own ImportError handling applies
    stand_in = _Deferred(name)
    # importlib reads `__spec__` of a module it finds in sys.modules; None keeps that read from
    # loading the real module (a LazyLoader module would load right there).
    stand_in.__spec__ = None
    sys.modules[name] = stand_in


def import_gx() -> types.ModuleType:
    """`great_expectations`, imported with DEFERRED held back until used."""
    # Set before the import for GX builds that send usage analytics (1.24.1 as installed here
    # ships no analytics module; the context is configured with analytics off as well).
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    if "great_expectations" not in sys.modules:
        for name in DEFERRED:
            _defer(name)
    return importlib.import_module("great_expectations")
