"""The relay beside the load (hiresync.delivery.beside), on SQLite, PostgreSQL and MariaDB: a large
run's committed batches are delivered while it loads, exactly once, and a killed load leaves no
relay behind."""

from __future__ import annotations

import dataclasses
import os
from contextlib import nullcontext
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.targets.ehr_sql import ehr_interview_results
from hiresync.errors import HireSyncError
from hiresync.hub.models import Outbox, Run
from hiresync.delivery.beside import RelayBeside
from hiresync.hub.store import engine_for, transaction
from hiresync.pipeline import deliver as deliver_module
from hiresync.pipeline import load as load_module
from hiresync.pipeline.runner import run_source
from tests.test_delivery_rest import targets  # noqa: F401 - the fixture

BATCH = 50


def outbox(settings, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(*where))


def ehr_count(settings) -> int:
    with engine_for(settings.ehr_url).connect() as conn:
        return conn.scalar(select(func.count()).select_from(ehr_interview_results))


def beside(settings, monkeypatch):
    """Batches of 50 and the relay beside the load from 100 rows on (300-result runs)."""
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(BATCH))
    monkeypatch.setenv("HIRESYNC_RELAY_BESIDE_ROWS", "100")
    return dataclasses.replace(settings, batch_size=BATCH, relay_beside_rows=100)


def pause_third_batch_until(monkeypatch, ready) -> None:
    """Before the third batch (two committed, no write lock held), wait until `ready()`: what the
    relay beside the load does then happens during the load, however fast the machine is."""
    real, calls = load_module._load_batch, []

    def paused(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            deadline = time.monotonic() + 60
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(load_module, "_load_batch", paused)


def test_a_large_run_is_delivered_beside_its_load_exactly_once(settings, aiview, monkeypatch):
    settings = beside(settings, monkeypatch)
    pause_third_batch_until(monkeypatch, lambda: outbox(settings, Outbox.status == "sent") > 0)
    steps: dict[str, dict] = {}
    sent_when_loaded = []

    def on_step(name: str, result: dict) -> None:
        steps[name] = result
        if name == "load":
            sent_when_loaded.append(outbox(settings, Outbox.status == "sent"))

    summary = run_source("aiview", settings, on_step=on_step)

    assert summary["status"] == "success"
    assert 0 < sent_when_loaded[0]  # delivered while the run was loading
    expected = 300 - len(aiview.defects)
    assert ehr_count(settings) == expected
    ours = outbox(settings, Outbox.run_id == summary["run_id"], Outbox.status == "sent")
    assert ours == summary["delivered"] >= expected  # re-scored results are delivered as new versions
    assert steps["deliver"] == {"ehr": ours}  # the helper's rows and the deliver step's, reported as one
    assert sent_when_loaded[0] < ours  # ... and the deliver step relayed the rest
    assert outbox(settings, Outbox.status != "sent") == 0
    with engine_for(settings.ehr_url).connect() as conn:  # once each, the newest version
        keys = conn.execute(select(ehr_interview_results.c.result_key)).scalars().all()
    assert len(keys) == len(set(keys))


def test_a_target_the_relay_beside_the_load_had_to_leave_fails_the_deliver_step(targets, monkeypatch):  # noqa: F811
    settings, grouphr, hrcloud = targets
    settings = beside(settings, monkeypatch)
    grouphr.throttle, grouphr.retry_after_seconds = 1, 600  # the first request is refused for ten minutes
    pause_third_batch_until(monkeypatch, lambda: grouphr.throttle == 0)

    with pytest.raises(HireSyncError, match=r"delivery to 'grouphr' failed \(HTTP 429.*rows stay pending"):
        run_source("aiview", settings)

    # The other targets have everything; grouphr all but the throttled rows (one claim), which wait
    # their turn, and the rows of the same candidates after them (order per candidate).
    throttled = outbox(settings, Outbox.target == "grouphr", Outbox.response_status == 429)
    assert 0 < throttled <= BATCH
    assert throttled <= outbox(settings, Outbox.target == "grouphr", Outbox.status == "pending") < 2 * throttled
    assert outbox(settings, Outbox.target != "grouphr", Outbox.status != "sent") == 0
    assert len(hrcloud.records) == ehr_count(settings) > len(grouphr.records) > 0
    with transaction(settings.hub_url) as s:
        run = s.scalars(select(Run)).one()
        assert run.status == "loaded" and "grouphr" in run.error  # loaded stays loaded; delivery resumes


def helpers_started(monkeypatch) -> list[RelayBeside]:
    """Every relay beside started from now on, with its outcome once it has stopped."""
    started, enter = [], RelayBeside.__enter__

    def entered(helper):
        started.append(helper)
        return enter(helper)

    monkeypatch.setattr(RelayBeside, "__enter__", entered)
    return started


def test_a_backlog_is_relayed_by_two_processes_in_the_deliver_step_exactly_once(targets, aiview, monkeypatch):  # noqa: F811
    settings, grouphr, hrcloud = targets
    settings = beside(settings, monkeypatch)
    monkeypatch.setattr(load_module, "beside_when", lambda *args: nullcontext())  # all of it waits for deliver
    grouphr.latency = 0.1  # each claim's request to it takes a while: the step's own relay finds work left
    started = helpers_started(monkeypatch)
    real_relay = deliver_module.relay

    def once_the_helper_has_sent(*args, **kwargs):
        deadline = time.monotonic() + 60
        while outbox(settings, Outbox.status == "sent") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        return real_relay(*args, **kwargs)

    monkeypatch.setattr(deliver_module, "relay", once_the_helper_has_sent)
    steps: dict[str, dict] = {}
    summary = run_source("aiview", settings, on_step=lambda name, result: steps.setdefault(name, result))

    assert summary["status"] == "success"
    assert len(started) == 1  # the deliver step's: nothing was due before it
    by_helper = sum(started[0].outcome["delivered"].values())
    assert not started[0].outcome["errors"]
    ours = outbox(settings, Outbox.run_id == summary["run_id"], Outbox.status == "sent")
    assert sum(steps["deliver"].values()) == ours  # the helper's rows and the step's own, reported as one
    assert 0 < by_helper < ours  # both relayed
    assert outbox(settings, Outbox.status != "sent") == 0  # the rows each one passed over too
    assert outbox(settings, Outbox.attempts != 1) == 0  # each row sent by one of them, once
    expected = 300 - len(aiview.defects)
    assert ehr_count(settings) == len(hrcloud.records) == expected


def test_a_small_backlog_is_relayed_by_the_deliver_step_alone(settings, aiview, monkeypatch):
    started = helpers_started(monkeypatch)  # the default threshold: 10,000 rows
    assert run_source("aiview", settings)["status"] == "success"
    assert started == [] and outbox(settings, Outbox.status != "sent") == 0


def test_a_killed_load_leaves_no_relay_behind_and_the_next_sync_delivers_once(settings, aiview, monkeypatch, tmp_path):
    settings = beside(settings, monkeypatch)
    pid_file = tmp_path / "helper.pid"
    script = ("import os, signal, time\n"
              "from pathlib import Path\n"
              "import psutil\n"
              "from hiresync.pipeline import load\n"
              "from hiresync.pipeline.runner import run_source\n"
              "real, calls = load._load_batch, []\n"
              "def third_dies(*args, **kwargs):\n"
              "    calls.append(1)\n"
              "    if len(calls) == 3:  # two batches committed; the relay beside is running\n"
              "        helper, = [p for p in psutil.Process().children() if 'hiresync.delivery.beside' in ' '.join(p.cmdline())]\n"
              f"        Path({str(pid_file)!r}).write_text(str(helper.pid))\n"
              "        time.sleep(1)\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return real(*args, **kwargs)\n"
              "load._load_batch = third_dies\n"
              "run_source('aiview', run_id='aiview__cli__killed')\n")
    killed = subprocess.run([sys.executable, "-c", script], env=os.environ, capture_output=True, text=True, timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    helper = int(pid_file.read_text())
    deadline = time.monotonic() + 60
    while _running(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(helper)  # it saw its pipe close and stopped after its batch

    summary = run_source("aiview", settings)  # reaps the killed run, pulls its window again
    assert summary["status"] == "success"
    assert ehr_count(settings) == 300 - len(aiview.defects)
    assert outbox(settings, Outbox.status != "sent") == 0


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's parent here may be a process that never reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
