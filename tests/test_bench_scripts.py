"""The benchmark scripts of `make bench` still run: each at a toy size, checked for the figures it
prints. Not a measurement (bench numbers never belong in a test); an API change that breaks a script
shows up here instead of in the next person's `make bench` (bench/pii.py once stopped `make bench`
half way, after an hour of end-to-end runs)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
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


def test_deliver_backlog_prints_the_deliver_steps_time_within_the_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HIRESYNC_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["HIRESYNC_VAR"] = str(tmp_path / "var")  # the script's hub, keys and EHR: not the checkout's var/
    out = subprocess.run([sys.executable, str(REPO / "bench" / "deliver_backlog.py"), "300"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0 < figures["deliver"] < figures["seconds"] and figures["deliver_cpu"] > 0
    assert "relay_beside" not in figures["cpu"]  # the backlog waited for the deliver step, as the script says


def _end_to_end(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HIRESYNC_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "end_to_end.py"), "--count", "300", "--repeat", "1", *args],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _cpu_figures(stdout: str) -> tuple[dict[str, float], float, float]:
    line = re.search(r"CPU per result \(ms\)\s+(.+) = ([\d.]+)", stdout)
    assert line, stdout[-2000:]
    parts = {name: float(v) for name, v in re.findall(r"([a-z ]+?) ([\d.]+)(?:, |$)", line.group(1))}
    busy = re.search(r"cores were (\d+)% busy; with all of them busy this work allows at most ([\d,]+) results/s", stdout)
    assert busy, stdout[-2000:]
    return parts, float(line.group(2)), float(busy.group(2).replace(",", ""))


def test_end_to_end_prints_the_cpu_each_process_spent():
    """The CPU lines: each stage's CPU beside its wall time, and CPU per result by process adding up
    to the total that the rate ceiling is computed from."""
    stdout = _end_to_end("--db", "sqlite")
    stages = re.findall(r"^\s+(extract|validate|map|load|deliver)\s+[\d.]+ s .*?([\d.]+) s = +(\d+)% of a core$",
                        stdout, re.M)
    assert [s[0] for s in stages] == ["extract", "validate", "map", "load", "deliver"], stdout[-2000:]
    assert sum(float(s[1]) for s in stages) > 0
    parts, total, ceiling = _cpu_figures(stdout)
    # 300 results start no relay beside the load, and SQLite works inside the pipeline's process
    assert set(parts) == {"pipeline", "simulator"}
    assert parts["pipeline"] > 0
    assert total == pytest.approx(sum(parts.values()), abs=0.02)
    pulled = int(re.search(r"for ([\d,]+) pulled", stdout).group(1).replace(",", ""))
    assert ceiling == pytest.approx(pulled * (os.cpu_count() or 1) / (total / 1000 * pulled), rel=0.05)


@pytest.mark.skipif(not os.environ.get("HIRESYNC_TEST_PG_URL"), reason="no PostgreSQL server configured")
def test_end_to_end_counts_a_local_postgresql_servers_cpu():
    stdout = _end_to_end("--db", "postgresql", "--pg-url", os.environ["HIRESYNC_TEST_PG_URL"])
    parts, _total, _ceiling = _cpu_figures(stdout)
    assert parts.get("database server", 0) > 0, stdout[-2000:]


def test_compact_payloads_prints_the_compactions_rate_and_bytes(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HIRESYNC_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["HIRESYNC_VAR"] = str(tmp_path / "var")
    out = subprocess.run([sys.executable, str(REPO / "bench" / "compact_payloads.py"), "1200"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["payloads"] > 1000 and figures["per_second"] > 0
    assert figures["bytes_after"] < figures["bytes_before"]


def test_the_rows_alone_are_every_row_the_run_left_written_again(tmp_path):
    """The bound `make bench` prints beside the floor: after a pipeline run, every row it left in the
    hub and the EHR goes into empty databases of the same schema; the copies hold the same rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HIRESYNC_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "include"), str(REPO), os.environ.get("PYTHONPATH")]))
    env["HIRESYNC_VAR"] = str(tmp_path)
    out = subprocess.run([sys.executable, str(REPO / "bench" / "end_to_end.py"), "--worker", "--mode", "pipeline",
                          "--count", "300"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    total = 0
    for name in ("hub", "ehr"):
        with sqlite3.connect(tmp_path / f"{name}.db") as run, sqlite3.connect(tmp_path / f"{name}.rows.db") as again:
            tables = [t for (t,) in run.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                      if t != "alembic_version"]  # the migrations write it in both
            for table in tables:
                rows = sorted(run.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
                assert rows == sorted(again.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr), table
                total += len(rows)
    assert total > 10 * figures["results"]  # results, dimensions, lineage, outbox, the EHR's copy...
    assert figures["rows_alone"]["rows"] == total
    assert figures["rows_alone"]["seconds"] > figures["rows_alone"]["hub_seconds"] > 0
