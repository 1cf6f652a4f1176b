"""`make airflow` from clean: the api-server first, then the rest; the first scheduled runs all
succeed at the first try (no failed or retried task instance); Ctrl-C stops every component."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import REPO

FIRST_RUNS = ("hiresync_sync_aiview", "hiresync_sync_zhiping", "hiresync_housekeeping")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(mode: str, tmp: Path, **extra) -> tuple[subprocess.Popen, dict]:
    home, var = tmp / "airflow", tmp / "var"
    var.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HIRESYNC_"))}
    env.update({
        "PYTHONPATH": str(REPO), "AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": '{"type": "file", "log_file_path": "%s", "append": true}' % (tmp / "ol.ndjson"),
        "GX_ANALYTICS_ENABLED": "False", "HIRESYNC_VAR": str(var), "HIRESYNC_SIM_COUNT": "150",
        "HIRESYNC_AIRFLOW_PORT": str(free_port()), "HIRESYNC_HOME": str(REPO),
        **extra,
    })
    log = (tmp / "launcher.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "hiresync.dev_airflow", mode], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, env


def stop(proc: subprocess.Popen, tmp: Path) -> None:
    """Ctrl-C (SIGINT to the launcher); every component must be gone soon after."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    # honcho starts each component in a session of its own ("<name> started (pid=N)"): all must be gone.
    pids = [int(p) for p in re.findall(r"started \(pid=(\d+)\)", (tmp / "launcher.log").read_text())]
    assert pids, "no component was started"
    left = []
    for pid in pids:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            continue
        left.append(pid)
        os.killpg(pid, signal.SIGKILL)
    assert not left, f"components still running after Ctrl-C: {left}"


def task_rows(url: str) -> tuple[list, list, list]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            runs = c.execute(text("SELECT dag_id, run_id, state FROM dag_run ORDER BY id")).all()
            tis = c.execute(text("SELECT dag_id, task_id, state, try_number, hostname FROM task_instance")).all()
            history = c.execute(text("SELECT dag_id, task_id, state, try_number FROM task_instance_history")).all()
    finally:
        engine.dispose()
    return runs, tis, history


def test_a_first_start_runs_the_first_schedules_with_nothing_red(tmp_path):
    proc, env = start("local", tmp_path)
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    try:
        deadline = time.monotonic() + 420
        runs = tis = history = []
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "launcher.log").read_text()[-3000:]
            time.sleep(5)
            try:
                runs, tis, history = task_rows(url)
            except Exception:  # noqa: BLE001 - the schema is still being created
                continue
            states = {}
            for r in runs:  # the first run of each DAG
                states.setdefault(r.dag_id, r.state)
            if all(states.get(d) in ("success", "failed") for d in (*FIRST_RUNS, "hiresync_results_digest")):
                break
        log = (tmp_path / "launcher.log").read_text()
        print(log[-3000:])  # shown with a failure; the states alone in the message, not cut short by the log
        assert all(states.get(d) == "success" for d in FIRST_RUNS), states
        assert states.get("hiresync_results_digest") == "success"  # scheduled on the syncs' Asset events
        red = [t for t in tis if t.state not in ("success", "skipped", None)] + list(history)
        assert not red, red  # no failed task, and no earlier failed try either
        assert all(t.try_number == 1 for t in tis if t.state == "success")
    finally:
        stop(proc, tmp_path)
    assert "api-server" in log and "scheduler" in log
