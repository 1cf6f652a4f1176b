"""The benchmark scripts of `make bench` still run: each at a toy size, checked for the figures it
prints. Not a measurement (bench numbers never belong in a test); an API change that breaks a script
shows up here instead of in the next person's `make bench` (bench/pii.py once stopped `make bench`
half way, after an hour of end-to-end runs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

SCRIPTS = {
    "end_to_end.py": (["--count", "300", "--repeat", "1", "--db", "sqlite"], r"HireSync end to end\s+([\d,]+) results/s"),
    "validation_mapping.py": (["--count", "300", "--repeat", "1"], r"map \+ both suites\s+([\d,]+)"),
    "pii.py": (["--count", "200", "--repeat", "1"], r"zlib level 1, compression alone \(before\)\s+([\d.]+) µs"),
    "relay.py": (["--records", "200", "--repeat", "1"], r"([\d,]+) records/s"),
    "dag_tasks.py": (["--repeat", "1"], r"slowest HireSync task once Airflow is up: \w+ ([\d.]+) s"),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_bench_script_runs_and_prints_its_figures(script):
    args, figure = SCRIPTS[script]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HIRESYNC_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    found = re.search(figure, out.stdout)
    assert found, out.stdout[-2000:]
    assert float(found.group(1).replace(",", "")) > 0
