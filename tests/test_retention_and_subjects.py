"""Retention purges and data-subject requests: personal data goes, tombstones stay."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from typer.testing import CliRunner

from connectors.targets import ehr_sql
from hiresync.cli import app
from hiresync.hub.models import (
    AuditEvent, Candidate, InterviewResult, Outbox, Quarantine, RawPayload, RecordLineage,
)
from hiresync.hub.store import engine_for, transaction
from hiresync.delivery.outbox import relay
from hiresync.privacy.pii import Keyring, mask_national_id
from hiresync.pipeline.runner import run_source
from hiresync.privacy.retention import purge


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_nothing_is_purged_before_its_time(settings, aiview):
    run_source("aiview", settings)
    assert purge(settings) == {"quarantine": 0, "raw_payloads": 0, "video_links": 0, "inbox": 0, "outbox_bodies": 0,
                               "staging": 0, "performance_ratings": 0}


def test_expired_data_is_purged_with_tombstones_and_lineage_survives(settings, aiview):
    summary = run_source("aiview", settings)
    later = datetime.now(timezone.utc) + timedelta(days=400)

    done = purge(settings, now=later)

    assert done["quarantine"] == summary["quarantined"]
    assert done["raw_payloads"] + done["quarantine"] == count(settings, RawPayload)
    assert done["video_links"] == summary["inserted"]
    assert count(settings, RawPayload, RawPayload.payload_enc.is_not(None)) == 0
    assert count(settings, InterviewResult, InterviewResult.video_url_enc.is_not(None)) == 0
    assert count(settings, Quarantine) == 0
    assert count(settings, RecordLineage) == summary["pulled"]  # hashes and outcomes stay for the audit
    assert count(settings, AuditEvent, AuditEvent.kind == "retention_purge") == sum(done.values())
    assert purge(settings, now=later) == {"quarantine": 0, "raw_payloads": 0, "video_links": 0, "inbox": 0,
                                          "outbox_bodies": 0, "staging": 0, "performance_ratings": 0}  # idempotent


def test_an_open_quarantine_keeps_its_payload_until_the_quarantine_expires(sqlite_settings, aiview, tmp_path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text("retention: {raw_payloads_days: 10, video_links_days: 90, quarantine_days: 60}\n")
    monkeypatch.setenv("HIRESYNC_POLICY", str(policy))
    from hiresync.config.settings import Settings

    settings = Settings.from_env()
    summary = run_source("aiview", settings)
    done = purge(settings, now=datetime.now(timezone.utc) + timedelta(days=30))
    assert done["quarantine"] == 0 and done["raw_payloads"] == count(settings, RawPayload) - summary["quarantined"]
    assert count(settings, RawPayload, RawPayload.payload_enc.is_not(None)) == summary["quarantined"]


def pick_person(settings, aiview) -> str:
    with transaction(settings.hub_url) as s:
        loaded = set(s.scalars(select(InterviewResult.vendor_result_id)))
    rec = next(r for r in aiview.records() if r["result_id"] in loaded)
    return rec["candidate"]["id_card"]


def test_subject_export_writes_everything_on_one_person(settings, aiview, tmp_path):
    run_source("aiview", settings)
    nid = pick_person(settings, aiview)
    out = tmp_path / "export.json"

    result = CliRunner().invoke(app, ["subject", "export", "--national-id", nid, "--out", str(out), "--operator", "hr-li"])

    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["candidate"]["national_id"] == nid.upper()
    assert doc["interview_results"] and all(r["vendor_payloads"] for r in doc["interview_results"])
    assert all(r["vendor_payloads"][0]["candidate"]["id_card"] == nid for r in doc["interview_results"])
    assert out.stat().st_mode & 0o077 == 0
    assert nid not in result.output  # the console says where, not what
    assert count(settings, AuditEvent, AuditEvent.kind == "subject_export") == 1


def test_subject_erase_removes_the_person_everywhere_and_queues_target_deletion(settings, aiview):
    run_source("aiview", settings)
    nid = pick_person(settings, aiview)
    keys = Keyring.load(settings.key_file)
    candidates_before = count(settings, Candidate)

    result = CliRunner().invoke(app, ["subject", "erase", "--national-id", nid, "--operator", "dpo-wang", "--yes"])
    assert result.exit_code == 0, result.output
    assert count(settings, Candidate) == candidates_before - 1
    with transaction(settings.hub_url) as s:
        erase = s.scalars(select(Outbox).where(Outbox.kind == "erase")).one()
        tomb = s.scalars(select(AuditEvent).where(AuditEvent.kind == "subject_erase")).one()
        request = json.loads(keys.decrypt(erase.payload_enc, f"outbox:{erase.target}:{erase.idempotency_key}"))
    ck = request["candidate_key"]
    assert tomb.subject_ref == f"candidate:{ck}" and nid not in json.dumps(tomb.detail)

    with engine_for(settings.ehr_url).connect() as conn:
        before = conn.scalar(select(func.count()).select_from(ehr_sql.ehr_candidates).where(ehr_sql.ehr_candidates.c.candidate_key == ck))
    assert before == 1
    relay(settings, keys, "ehr")
    relay(settings, keys, "ehr")  # again: nothing left to do, nothing breaks
    with engine_for(settings.ehr_url).connect() as conn:
        left = conn.scalar(select(func.count()).select_from(ehr_sql.ehr_interview_results).where(
            ehr_sql.ehr_interview_results.c.candidate_key == ck))
        cand_left = conn.scalar(select(func.count()).select_from(ehr_sql.ehr_candidates).where(
            ehr_sql.ehr_candidates.c.candidate_key == ck))
    assert left == 0 and cand_left == 0

    # Their vendor payloads are purged too: nothing decryptable about them is left.
    assert request["result_keys"]
    vendor_ids = [k.split(":", 1)[1] for k in request["result_keys"]]
    assert count(settings, RawPayload, RawPayload.vendor_result_id.in_(vendor_ids), RawPayload.payload_enc.is_not(None)) == 0
    assert count(settings, InterviewResult, InterviewResult.vendor_result_id.in_(vendor_ids)) == 0
    again = CliRunner().invoke(app, ["subject", "export", "--national-id", nid, "--out", "/dev/null", "--operator", "x"])
    assert again.exit_code == 1 and mask_national_id(nid.upper()) in again.output and nid not in again.output


def test_erase_without_yes_does_nothing(sqlite_settings, aiview):
    run_source("aiview", sqlite_settings)
    before = count(sqlite_settings, Candidate)
    result = CliRunner().invoke(app, ["subject", "erase", "--national-id", pick_person(sqlite_settings, aiview),
                                      "--operator", "x"])
    assert result.exit_code == 1 and "--yes" in result.output
    assert count(sqlite_settings, Candidate) == before


def test_drained_webhook_deliveries_go_with_the_raw_payload_lifetime(sqlite_settings):
    from hiresync.hub.models import InboxDelivery

    old = datetime.now(timezone.utc) - timedelta(days=400)
    with transaction(sqlite_settings.hub_url) as s:
        s.add_all([InboxDelivery(source="kuaipin", delivery_id="d-1", payload_enc="v1:eA==", status="drained",
                                 run_id="r", received_at=old),
                   InboxDelivery(source="kuaipin", delivery_id="d-2", payload_enc="v1:eA==", status="new", received_at=old),
                   InboxDelivery(source="kuaipin", delivery_id="d-3", payload_enc="v1:eA==", status="drained", run_id="r")])
    assert purge(sqlite_settings)["inbox"] == 1
    with transaction(sqlite_settings.hub_url) as s:
        left = set(s.scalars(select(InboxDelivery.delivery_id)))
        tomb = s.scalars(select(AuditEvent.subject_ref).where(AuditEvent.kind == "retention_purge")).all()
    assert left == {"d-2", "d-3"}  # an undrained delivery is never purged
    assert len(tomb) == 1 and tomb[0].startswith("inbox:")


def test_lineage_and_audit_rows_never_hold_personal_data(settings, aiview):
    from hiresync.hub.models import IdentityReview, MappingVersion
    from tests.helpers import leaks, personal_values

    run_source("aiview", settings)
    purge(settings, now=datetime.now(timezone.utc) + timedelta(days=400))
    nid = pick_person(settings, aiview)
    CliRunner().invoke(app, ["subject", "erase", "--national-id", nid, "--operator", "dpo", "--yes"])
    with engine_for(settings.hub_url).connect() as conn:
        dump = json.dumps([[str(v) for v in row] for model in (RecordLineage, AuditEvent, Quarantine, IdentityReview,
                                                                MappingVersion)
                           for row in conn.execute(select(model.__table__))], ensure_ascii=False)
    assert count(settings, AuditEvent) > 0 and count(settings, RecordLineage) > 0
    assert leaks(dump, personal_values(aiview.records())) == []


def test_retention_covers_sent_outbox_bodies_and_staging_left_behind(settings, aiview):
    """Finding 7: after raw payloads and video links expire, no sent outbox body still decrypts with the
    resident ID or the video link, and a crashed run's staging folder goes too."""
    import os
    import time

    from hiresync.delivery import outbox_admin
    from hiresync.ingest.staging import Staging
    from hiresync.privacy.keys import COLUMNS

    summary = run_source("aiview", settings)
    keys = Keyring.load(settings.key_file)
    sent = count(settings, Outbox, Outbox.status == "sent")
    assert sent == summary["inserted"] > 0
    left = Staging(settings.staging_dir, "crashed-run", keys)
    left.write_records("raw", [{"payload": r} for r in aiview.records()[:5]])
    fresh = Staging(settings.staging_dir, "running-now", keys)
    fresh.write_records("raw", [{"payload": r} for r in aiview.records()[5:6]])
    old = time.time() - 10 * 86400
    for path in [left.dir, *left.dir.iterdir()]:
        os.utime(path, (old, old))

    assert purge(settings)["staging"] == 1  # 10 days > the default 7; the fresh one stays
    assert not left.dir.exists() and fresh.dir.exists()
    done = purge(settings, now=datetime.now(timezone.utc) + timedelta(days=400))
    assert done["outbox_bodies"] == sent
    ids = {r["candidate"]["id_card"].upper() for r in aiview.records()}
    videos = {r["interview"]["video"]["url"] for r in aiview.records() if r["interview"].get("video")}
    with transaction(settings.hub_url) as s:
        for col in COLUMNS:
            for row in s.scalars(select(col.model).where(getattr(col.model, col.column).is_not(None))):
                text = keys.decrypt(getattr(row, col.column), col.context(row)).upper()
                assert not [v for v in ids | {u.upper() for u in videos} if v in text], col.model.__tablename__
    assert count(settings, Outbox, Outbox.status == "sent") == sent  # the delivery history stays
    assert outbox_admin.replay(settings, "ehr") == 0  # nothing left to send again
