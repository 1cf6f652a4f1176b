"""The skeleton's invariants, end to end against the AIView simulator, on every hub database."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import func, select

from connectors.errors import SourceAuthError, SourceUnavailable
from connectors.targets.ehr_sql import ehr_interview_results
from hiresync.errors import ConfigError, KeyMaterialError
from hiresync.hub.models import (
    Candidate, DimensionScore, InterviewResult, Outbox, Quarantine, RawPayload, RecordLineage, Run, Watermark,
)
from hiresync.hub.store import engine_for, transaction
from hiresync.pipeline import load as load_module
from hiresync.pipeline.runner import run_source
from tests.helpers import connect
from tests.helpers import leaks, personal_values


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def ehr_count(settings) -> int:
    with engine_for(settings.ehr_url).connect() as conn:
        return conn.scalar(select(func.count()).select_from(ehr_interview_results))


def watermark(settings):
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, "aiview")
        return mark.cursor_value if mark else None


@pytest.fixture(params=[None, 23], ids=["one-batch", "batches-of-23"])
def batched(request, settings, monkeypatch):
    """`settings`, and again with micro-batches so small that a run spans many (the invariants must
    not depend on a run fitting in one batch)."""
    if request.param is None:
        return settings
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(request.param))
    return dataclasses.replace(settings, batch_size=request.param)


def test_first_run_accounts_for_every_pulled_result(batched, aiview):
    settings = batched
    summary = run_source("aiview", settings)

    total_versions = 300 + len(aiview.rescored)
    assert summary["status"] == "success"
    assert summary["pulled"] == total_versions
    assert summary["pulled"] == summary["inserted"] + summary["updated"] + summary["unchanged"] + summary["quarantined"]
    assert summary["quarantined"] == len(aiview.defects)
    assert summary["inserted"] == 300 - len(aiview.defects)
    # One batch: a re-score pulled with its first version supersedes it. Many batches: the first
    # version may be loaded and delivered in an earlier batch, the re-score then updates it.
    assert summary["delivered"] == summary["inserted"] + summary["updated"]
    assert count(settings, InterviewResult) == summary["inserted"]
    assert ehr_count(settings) == summary["inserted"]
    assert count(settings, RecordLineage) == summary["pulled"]
    assert count(settings, DimensionScore) >= 4 * summary["inserted"]
    # Re-scored results arrived in one pull with their first version: the newest one is stored.
    with transaction(settings.hub_url) as s:
        versions = dict(s.execute(select(InterviewResult.vendor_result_id, InterviewResult.source_updated_at)).all())
    rescored_ok = [k for k in aiview.rescored if k in versions]
    assert rescored_ok and all(versions[k].year == 2026 and versions[k].month == 12 for k in rescored_ok)


def test_each_defect_is_quarantined_with_its_field_and_rule(settings, aiview):
    run_source("aiview", settings)

    with transaction(settings.hub_url) as s:
        rows = {q.vendor_result_id: q for q in s.scalars(select(Quarantine))}
    assert set(rows) == set(aiview.defects)
    expected = {"bad_id_checksum": ("candidate.national_id", "ID_CHECKSUM"),
                "score_out_of_range": ("overall_score", "RANGE"),
                "malformed_time": ("completed_at", "DATETIME")}
    for key, kind in aiview.defects.items():
        problems = {(p["field"], p["rule"]) for p in rows[key].problems}
        if kind == "missing_required":
            assert {rule for _, rule in problems} == {"NOT_NULL"}, problems
            assert problems & {("candidate.full_name", "NOT_NULL"), ("position_code", "NOT_NULL")}
        else:
            assert expected[kind] in problems, (kind, problems)
        assert rows[key].reason_code == rows[key].problems[0]["rule"]


def test_rerun_of_the_same_window_changes_and_duplicates_nothing(batched, aiview):
    settings = batched
    run_source("aiview", settings)
    before = {m.__tablename__: count(settings, m) for m in (Candidate, InterviewResult, DimensionScore, Outbox, RawPayload)}
    ehr_before = ehr_count(settings)
    with transaction(settings.hub_url) as s:  # rewind: the same window is pulled again in full
        s.delete(s.get(Watermark, "aiview"))

    second = run_source("aiview", settings)

    assert second["pulled"] == 300 + len(aiview.rescored)
    assert second["inserted"] == second["updated"] == 0
    assert second["delivered"] == 0
    assert {m.__tablename__: count(settings, m) for m in (Candidate, InterviewResult, DimensionScore, Outbox, RawPayload)} == before
    assert ehr_count(settings) == ehr_before


def test_second_run_is_incremental(settings, aiview):
    first = run_source("aiview", settings)
    changed = aiview.rescore(7)

    second = run_source("aiview", settings)

    assert second["pulled_since"] < first["watermark_after"]  # the overlap window is re-read
    assert second["updated"] == 7 and second["inserted"] == 0
    assert second["delivered"] == 7
    assert second["pulled"] == second["updated"] + second["unchanged"] + second["quarantined"]
    with transaction(settings.hub_url) as s:
        bumped = dict(s.execute(select(InterviewResult.vendor_result_id, InterviewResult.version)
                                .where(InterviewResult.vendor_result_id.in_(changed))).all())
    assert set(bumped) == set(changed) and all(v >= 2 for v in bumped.values())
    with engine_for(settings.ehr_url).connect() as conn:
        ehr_versions = dict(conn.execute(select(ehr_interview_results.c.result_key, ehr_interview_results.c.hub_version)
                                         .where(ehr_interview_results.c.result_key.in_([f"aiview:{k}" for k in changed]))).all())
    assert {k.split(":", 1)[1]: v for k, v in ehr_versions.items()} == bumped


def test_an_older_version_never_overwrites_a_newer_one(batched, aiview, monkeypatch):
    settings = batched
    from simulators.aiview import AIViewSimulator

    run_source("aiview", settings)
    key = sorted(aiview.rescored - set(aiview.defects))[0]
    with transaction(settings.hub_url) as s:
        newest = s.scalars(select(InterviewResult).where(InterviewResult.vendor_result_id == key)).one()
        newest_score, newest_version = newest.overall_score, newest.version
        s.delete(s.get(Watermark, "aiview"))

    # The vendor replays its old change feed: the same results, without the re-scores.
    with AIViewSimulator(count=300, seed=11, defect_rate=0.05, rescore_rate=0) as replay:
        connect(monkeypatch, replay)
        run_source("aiview", settings)

    with transaction(settings.hub_url) as s:
        row = s.scalars(select(InterviewResult).where(InterviewResult.vendor_result_id == key)).one()
        outcome = s.scalars(select(RecordLineage.outcome).where(RecordLineage.vendor_result_id == key)
                            .order_by(RecordLineage.id.desc()).limit(1)).one()
    assert (row.overall_score, row.version) == (newest_score, newest_version)
    assert outcome == "stale"


def test_a_crash_after_the_last_batch_leaves_the_run_unloaded_and_its_retry_finishes_it(batched, aiview, monkeypatch):
    settings = batched
    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash after the data, before the watermark")

    monkeypatch.setattr(load_module, "_advance_watermark", boom)
    with pytest.raises(RuntimeError):
        run_source("aiview", settings, run_id="crash-1")

    # Every batch committed, the run did not: not loaded, no counts, the watermark where it was.
    assert watermark(settings) is None
    pulled = 300 + len(aiview.rescored)
    with transaction(settings.hub_url) as s:
        run = s.get(Run, "crash-1")
        assert run.status == "failed" and run.error == "load: RuntimeError"
        assert (run.inserted, run.unchanged, run.quarantined) == (0, 0, 0)
        assert run.load_progress["rows"] == pulled
    assert count(settings, RecordLineage) == pulled

    monkeypatch.undo()
    connect(monkeypatch, aiview)
    monkeypatch.setenv("HIRESYNC_HUB_URL", settings.hub_url)
    monkeypatch.setenv("HIRESYNC_VAR", str(settings.var_dir))
    monkeypatch.setenv("HIRESYNC_EHR_URL", settings.ehr_url)
    monkeypatch.setenv("HIRESYNC_HOME", str(settings.home))
    summary = run_source("aiview", settings, run_id="crash-1")  # the same run, retried
    # What one uninterrupted run would have said, and nothing twice.
    assert summary["status"] == "success" and summary["inserted"] == 300 - len(aiview.defects)
    assert summary["pulled"] == pulled and count(settings, RecordLineage) == pulled
    assert count(settings, InterviewResult) == summary["inserted"]
    assert count(settings, Quarantine) == len(aiview.defects)
    assert count(settings, Outbox) == summary["inserted"] + summary["updated"]  # one per new version
    assert watermark(settings) is not None
    with transaction(settings.hub_url) as s:
        assert s.get(Run, "crash-1").load_progress is None


def test_a_run_killed_between_two_committed_batches_is_redone_by_the_next_sync_without_duplicates(
        settings, aiview, monkeypatch):
    import os
    import signal
    import subprocess
    import sys

    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", "50")
    script = ("import os, signal\n"
              "from hiresync.pipeline import load\n"
              "from hiresync.pipeline.runner import run_source\n"
              "real, calls = load._load_batch, []\n"
              "def third_dies(*args, **kwargs):\n"
              "    calls.append(1)\n"
              "    done = real(*args, **kwargs)\n"
              "    if len(calls) == 3:  # two batches committed, the third written, not committed\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return done\n"
              "load._load_batch = third_dies\n"
              "run_source('aiview', run_id='aiview__cli__killed')\n")
    killed = subprocess.run([sys.executable, "-c", script], env=os.environ, capture_output=True, text=True, timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    assert watermark(settings) is None
    assert count(settings, RecordLineage) == 100  # two batches, whole; nothing of the third
    with transaction(settings.hub_url) as s:
        run = s.get(Run, "aiview__cli__killed")
        assert run.status == "extracting" and run.load_progress["batches"] == 2 and run.inserted == 0
        loaded_before = s.scalar(select(func.count()).select_from(InterviewResult))
    assert loaded_before > 0
    # Its committed batches are deliverable before the run is: another source's deliver relays the
    # same target, and renders each row with the mapping spec the row names.
    from hiresync.delivery.outbox import relay
    from hiresync.privacy.keys import hub_keys

    assert relay(settings, hub_keys(settings), "ehr") == loaded_before
    assert count(settings, Outbox, Outbox.status == "dead") == 0
    assert ehr_count(settings) == loaded_before

    summary = run_source("aiview", settings)  # the next sync reaps the killed run and pulls its window again
    assert summary["status"] == "success" and summary["pulled"] == 300 + len(aiview.rescored)
    assert count(settings, InterviewResult) == 300 - len(aiview.defects)  # nothing twice
    assert count(settings, InterviewResult, InterviewResult.first_run_id == summary["run_id"]) == summary["inserted"]
    assert summary["inserted"] == 300 - len(aiview.defects) - loaded_before
    assert count(settings, Quarantine, Quarantine.status == "open") == len(aiview.defects)
    assert count(settings, RecordLineage, RecordLineage.run_id == summary["run_id"]) == summary["pulled"]
    assert ehr_count(settings) == 300 - len(aiview.defects)
    assert watermark(settings) is not None
    with transaction(settings.hub_url) as s:
        assert s.get(Run, "aiview__cli__killed").status == "failed"


def test_load_retried_after_success_does_nothing_twice(batched, aiview):
    settings = batched
    from hiresync.pipeline.context import RunContext
    from hiresync.pipeline.load import load

    summary = run_source("aiview", settings, run_id="twice")
    ctx = RunContext.open("aiview", "twice", settings)
    ctx.staging.write_json("manifest", {"max_cursor": None})  # staging is gone after publish; a retry still finds the run
    ctx.staging.write_json("validation", {"failures": {}})
    ctx.staging.write_json("map_problems", {})
    assert load(ctx) == {k: summary[k] for k in ("pulled", "inserted", "updated", "unchanged", "quarantined")}
    assert count(settings, RecordLineage) == summary["pulled"]


def test_bad_credentials_stop_the_run_with_one_clear_message(settings, aiview, monkeypatch):
    connect(monkeypatch, aiview, password="wrong-secret")
    with pytest.raises(SourceAuthError) as err:
        run_source("aiview", settings, run_id="badcreds")
    message = str(err.value)
    assert "aiview" in message and "credentials refused" in message and "hiresync_aiview" in message
    assert "wrong-secret" not in message
    assert watermark(settings) is None
    with transaction(settings.hub_url) as s:
        assert s.get(Run, "badcreds").status == "failed"


def test_unreachable_vendor_leaves_the_watermark(settings, aiview, monkeypatch):
    run_source("aiview", settings)
    before = watermark(settings)
    aiview.outage = True
    with pytest.raises(SourceUnavailable) as err:
        run_source("aiview", settings)
    assert str(err.value) == "source 'aiview': POST /oauth/token: HTTP 503"  # source, request, cause
    assert watermark(settings) == before


def test_broken_profile_names_file_and_key(settings, aiview, tmp_path, monkeypatch):
    profile = tmp_path / "broken.yaml"
    profile.write_text((settings.home / "connectors/profiles/aiview.yaml").read_text().replace(
        "cursor_param: cursor", "cursor_parm: cursor"))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  aiview:\n    profile: {profile}\n    mapping: mappings/aiview.yaml\n")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(sources))
    from hiresync.config.settings import Settings

    with pytest.raises(ConfigError) as err:
        run_source("aiview", Settings.from_env(), run_id="broken")
    assert str(profile) in str(err.value) and "stream.paginator" in str(err.value)
    assert watermark(settings) is None
    assert sum(aiview.requests.values()) == 0
    with transaction(settings.hub_url) as s:
        run = s.get(Run, "broken")
        assert run.status == "failed" and run.error == f"extract: {err.value}"  # what `hiresync status` shows


def test_missing_key_stops_before_anything_is_touched(settings, aiview):
    settings.key_file.unlink()
    with pytest.raises(KeyMaterialError) as err:
        run_source("aiview", settings)
    assert "hiresync init" in str(err.value)
    assert sum(aiview.requests.values()) == 0
    assert count(settings, Run) == 0


def test_wrong_key_cannot_read_what_another_key_wrote(settings, aiview):
    from hiresync.privacy.pii import Keyring

    run_source("aiview", settings)
    settings.key_file.unlink()
    Keyring.generate(settings.key_file)
    with transaction(settings.hub_url) as s:
        enc = s.scalars(select(Candidate.national_id_enc)).first()
        key = s.scalars(select(Candidate.candidate_key)).first()
    with pytest.raises(KeyMaterialError):
        Keyring.load(settings.key_file).decrypt(enc, f"candidates.national_id:{key}")


def test_outbox_payloads_and_hub_columns_hold_no_plaintext_personal_data(settings, aiview):
    run_source("aiview", settings)
    with engine_for(settings.hub_url).connect() as conn:
        dump = json.dumps([list(map(str, row)) for model in (Candidate, InterviewResult, Outbox, RawPayload, Quarantine, RecordLineage)
                           for row in conn.execute(select(model.__table__))], ensure_ascii=False)
    assert leaks(dump, personal_values(aiview.records())) == []


def test_a_database_error_in_the_second_batch_fails_the_run_names_the_batch_and_keeps_the_first(settings, aiview,
                                                                                                   monkeypatch):
    from sqlalchemy.exc import OperationalError

    settings = dataclasses.replace(settings, batch_size=50)
    real, calls = load_module._load_batch, []

    def second_batch_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first batch has committed, the second one dies half-way
            real(*args, **kwargs)
            raise OperationalError("INSERT INTO interview_results ...", {}, Exception("database is gone"))
        return real(*args, **kwargs)

    monkeypatch.setattr(load_module, "_load_batch", second_batch_fails)
    with pytest.raises(Exception, match=r"batch 2 \(rows 50-99\)"):
        run_source("aiview", settings, run_id="mid-batch")
    assert watermark(settings) is None
    assert count(settings, RecordLineage) == 50  # the first batch, whole; nothing of the second
    with transaction(settings.hub_url) as s:
        run = s.get(Run, "mid-batch")
        assert run.status == "failed" and "batch 2" in run.error and "database is gone" not in run.error
        assert run.load_progress["batches"] == 1 and run.inserted == 0
    from typer.testing import CliRunner

    from hiresync.cli import app

    status = CliRunner().invoke(app, ["status"]).output
    pulled = 300 + len(aiview.rescored)
    assert f"pulled {pulled}, 50 rows loaded in whole batches, the run not (stopped at load); watermark unchanged" \
        in status, status

    monkeypatch.setattr(load_module, "_load_batch", real)
    summary = run_source("aiview", settings, run_id="mid-batch")  # the same run, retried, finishes once
    assert summary["status"] == "success" and summary["pulled"] == 300 + len(aiview.rescored)
    assert count(settings, RecordLineage) == summary["pulled"]
    assert count(settings, InterviewResult) == summary["inserted"] == 300 - len(aiview.defects)
    assert count(settings, Outbox) == summary["inserted"] + summary["updated"]  # one per new version


def test_a_rerun_that_pulls_nothing_new_skips_the_contract_and_never_imports_great_expectations(settings, aiview):
    import os
    import subprocess
    import sys

    first = run_source("aiview", settings)
    with transaction(settings.hub_url) as s:  # rewind: the whole window again, every payload already known
        s.delete(s.get(Watermark, "aiview"))
    quarantined_before = count(settings, Quarantine)
    script = ("import json, sys; from hiresync.pipeline.runner import run_source; s = run_source('aiview'); "
              "print(json.dumps({'summary': s, 'gx': 'great_expectations' in sys.modules, "
              "'pandas': 'pandas' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", script], env=os.environ, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    second = result["summary"]

    assert result["gx"] is False and result["pandas"] is False  # nothing new: no contract to evaluate
    assert second["pulled"] == first["pulled"]
    assert second["inserted"] == second["updated"] == 0 and second["delivered"] == 0
    assert second["quarantined"] == first["quarantined"] == len(aiview.defects)
    assert second["pulled"] == second["unchanged"] + second["quarantined"]
    assert count(settings, Quarantine) == quarantined_before  # the same defect again is not a second row
    with transaction(settings.hub_url) as s:
        assert set(s.scalars(select(Quarantine.seen_count))) == {2}  # but it is counted
    assert count(settings, RecordLineage) == first["pulled"] + second["pulled"]
    with transaction(settings.hub_url) as s:
        outcomes = dict(s.execute(select(RecordLineage.outcome, func.count()).where(
            RecordLineage.run_id == second["run_id"]).group_by(RecordLineage.outcome)).all())
    # the re-scores' first versions are known too, and the hub holds their newer version
    assert outcomes == {"unchanged": 300 - len(aiview.defects), "stale": len(aiview.rescored),
                        "quarantined": len(aiview.defects)}


def test_a_payload_quarantined_for_a_reason_time_can_change_is_judged_again(settings, aiview):
    from hiresync.load.known import REJUDGE

    run_source("aiview", settings)
    with transaction(settings.hub_url) as s:
        q = s.scalars(select(Quarantine).limit(1)).one()
        q.problems = [{**q.problems[0], "rule": "FUTURE"}]  # as if it had been dated ahead of the clock
        s.delete(s.get(Watermark, "aiview"))
    assert "FUTURE" in REJUDGE
    second = run_source("aiview", settings)
    assert second["quarantined"] == len(aiview.defects)
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(Quarantine).where(Quarantine.vendor_result_id == q.vendor_result_id)).all()
    # judged again, found defective again: the same row, counted, with today's reason
    assert len(rows) == 1 and rows[0].seen_count == 2 and rows[0].reason_code != "FUTURE"
    assert rows[0].last_seen_at is not None


def test_a_large_load_refreshes_the_planner_statistics_on_postgresql(settings, aiview, monkeypatch):
    from sqlalchemy import text

    monkeypatch.setattr(load_module, "ANALYZE_AFTER", 10)  # "large", for a 300-result test
    summary = run_source("aiview", settings)
    assert summary["status"] == "success"  # and on SQLite and MariaDB the step is a no-op
    engine = engine_for(settings.hub_url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            analyzed = dict(conn.execute(text(
                "SELECT relname, last_analyze FROM pg_stat_user_tables "
                "WHERE relname IN ('interview_results', 'raw_payloads', 'outbox')")).all())
        assert set(analyzed) == {"interview_results", "raw_payloads", "outbox"}
        assert all(v is not None for v in analyzed.values()), analyzed
