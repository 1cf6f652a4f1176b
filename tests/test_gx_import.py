"""Great Expectations is imported with scipy.stats and altair held back until used
(hiresync.contract.gx_import). Each check runs in a fresh interpreter: the test process has
usually imported GX the ordinary way already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import REPO

HEAVY = ("scipy.stats._stats_py", "altair.vegalite")

VALIDATE_THEN_USE = """
import json, sys
import pandas as pd
from hiresync.contract.gx import Check, validate_frame

frame = pd.DataFrame({"key": ["r1", "r2", "r3"], "score": [10.0, None, 101.0]})
checks = [Check("score", "NOT_NULL", "ExpectColumnValuesToNotBeNull", {"column": "score"}),
          Check("score", "RANGE", "ExpectColumnValuesToBeBetween", {"column": "score", "min_value": 0, "max_value": 100})]
outcome = validate_frame(frame, "key", checks, "import_check")
heavy = %r
after_validation = [m for m in heavy if m in sys.modules]

# What the KL-divergence expectation holds is a stand-in until used, then the real module.
from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
entropy = float(kl.stats.entropy([0.5, 0.5], [0.5, 0.5]))
from scipy.stats import entropy as entropy_fn
chart = kl.alt.Chart.__name__
print(json.dumps({"failures": sorted((f.key, f.rule) for f in outcome.failures),
                  "after_validation": after_validation,
                  "after_use": [m for m in heavy if m in sys.modules],
                  "entropy": entropy, "same_function": entropy_fn is kl.stats.entropy,
                  "real_in_sys_modules": type(sys.modules["scipy.stats"]).__name__ == "module",
                  "chart": chart}))
""" % (HEAVY,)


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, GX_ANALYTICS_ENABLED="False"), timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_validation_runs_without_loading_scipy_stats_or_altair_and_they_load_on_first_use():
    got = _run(VALIDATE_THEN_USE)
    assert got["failures"] == [["r2", "NOT_NULL"], ["r3", "RANGE"]]  # GX judged the rows as usual
    assert got["after_validation"] == []
    assert got["after_use"] == list(HEAVY)
    assert got["entropy"] == 0.0 and got["same_function"] and got["real_in_sys_modules"]
    assert got["chart"] == "Chart"


def test_a_module_imported_before_gx_is_left_as_it_is():
    got = _run("import json, sys, scipy.stats\n"
               "real = sys.modules['scipy.stats']\n"
               "from hiresync.contract.gx_import import import_gx\n"
               "import_gx()\n"
               "print(json.dumps({'same': sys.modules['scipy.stats'] is real}))")
    assert got == {"same": True}
