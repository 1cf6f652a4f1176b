"""Task logs a person can read: no library noise, one short summary line per step, progress on long work."""

from __future__ import annotations

import io
import json
import re

from tests.test_dags import dagbag

_NOISE = ("Skipping registering function", "Retrying (Retry(", "Incremented Retry", "Returned value was",
          "DeprecationWarning")


def _task_block(text: str, task_id: str) -> list[str]:
    start = text.index(f"[DAG TEST] starting task_id={task_id} ")
    end = text.index(f"[DAG TEST] end task task_id={task_id} ", start)
    return text[start:end].splitlines()


def test_validate_task_log_has_the_summary_and_no_library_noise(airflow_db, sqlite_settings, aiview, capfd, caplog,
                                                                monkeypatch):
    from airflow.utils.state import DagRunState

    from hiresync.monitor.progress import LINE_WIDTH

    monkeypatch.setenv("HIRESYNC_PROGRESS_SECONDS", "0")  # every batch reports: the test sees progress lines
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", "100")
    dag_run = dagbag().dags["hiresync_sync_aiview"].test()
    assert dag_run.state == DagRunState.SUCCESS
    # Airflow's console handler (stdout) if it is set up in this process, else pytest's log capture.
    out = capfd.readouterr().out
    text = out if "[DAG TEST] starting task_id=validate " in out else caplog.text

    validate = _task_block(text, "validate")
    noise = [line for line in validate if any(n in line for n in _NOISE)]
    assert not noise, noise[:3]
    summary = [line for line in validate if "validate aiview: rows 315, known 0, failed rows 15" in line]
    assert len(summary) == 1, validate
    message = re.search(r"(validate aiview: .*?\(\d+\.\d s\))", summary[0]).group(1)
    assert len(message) <= LINE_WIDTH
    progress = [line for line in validate if re.search(r"validate aiview: [\d,]+ of 315 records \(\d+%\), batches \d+", line)]
    assert progress, validate  # batch by batch with a rate
    assert all("records/s" in line for line in progress)
    # every step of the run has its summary line
    for step in ("extract", "map", "load", "deliver", "publish", "data_docs"):
        assert [line for line in _task_block(text, step if step != "data_docs" else "data_docs")
                if f"{step} aiview: " in line], step


def test_cli_sync_prints_plain_lines_off_a_terminal_and_only_json_with_json(sqlite_settings, aiview):
    from typer.testing import CliRunner

    from hiresync.cli import app

    plain = CliRunner().invoke(app, ["sync", "aiview"])
    assert plain.exit_code == 0, plain.output
    assert re.search(r"^extract aiview: pulled 315 \(\d+\.\d s\)$", plain.output, re.M)
    assert re.search(r"^load aiview: pulled 0, inserted 0", plain.output, re.M) is None  # first run loads
    assert "\x1b[" not in plain.output  # no terminal control codes in a log file

    as_json = CliRunner().invoke(app, ["sync", "aiview", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["status"] == "success"  # stdout is JSON alone; lines went to stderr
    assert "extract aiview:" in as_json.stderr


def test_a_terminal_gets_a_progress_bar(monkeypatch):
    from hiresync.monitor import progress

    monkeypatch.setattr(progress.sys, "stderr", _Tty())
    reporter = progress.cli_reporter(as_json=False)
    try:
        assert isinstance(reporter, progress.RichReporter)
        reporter.start("validate", "aiview", 10)
        reporter.advance(5, 10, "records", {})
        reporter.finish("validate", "aiview", {"rows": 10}, 0.5)
    finally:
        reporter.close()
    assert isinstance(progress.cli_reporter(as_json=True), progress.LogReporter)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_extract_progress_says_how_many_pages_were_read(sqlite_settings, monkeypatch):
    from simulators.aiview import AIViewSimulator

    from hiresync.monitor.progress import Reporter
    from hiresync.pipeline.context import RunContext
    from hiresync.pipeline.extract import extract
    from tests.helpers import connect

    seen = []

    class Capture(Reporter):
        def advance(self, done, total, unit, counts):
            seen.append((done, dict(counts)))

    with AIViewSimulator(count=1200, seed=5) as sim:  # pages of 500 (the profile's limit)
        connect(monkeypatch, sim)
        ctx = RunContext.open("aiview", "aiview__pages", sqlite_settings)
        ctx.reporter = Capture()
        pulled = extract(ctx)["pulled"]
    assert pulled > 1000
    assert seen[:2] == [(500, {"pages": 1}), (1000, {"pages": 2})]
