"""Erase/export completeness (issue 14, findings 2 and 3): one person seeded into every table and
folder that can hold them; export holds every record, erase leaves nothing of them that a blind
index, a decryption of every encrypted column or a plaintext scan could find, and every target that
ever received them, also one removed from sources.yaml since, gets a deletion request."""

from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from connectors.targets import ehr_sql
from hiresync.cli import app
from hiresync.delivery import outbox as outbox_mod
from hiresync.delivery.outbox import relay
from hiresync.hub.models import (
    AuditEvent, Candidate, IdentityReview, InboxDelivery, InterviewResult, Outbox, Quarantine, RawPayload, Run,
)
from hiresync.hub.store import engine_for, transaction
from hiresync.ingest import inbox
from hiresync.ingest.staging import Staging
from hiresync.pipeline.context import RunContext
from hiresync.pipeline.extract import payload_hash
from hiresync.pipeline.runner import run_source
from hiresync.privacy.keys import CANDIDATE_PII, COLUMNS
from hiresync.privacy.pii import Keyring
from simulators.aiview import AIViewSimulator
from simulators.hrtargets import GroupHRSimulator, HRCloudSimulator
from tests.helpers import connect, hub_plaintext, leaks, personal_values
from tests.test_identity import sync


def write_sources(path, targets: list[str]) -> None:
    path.write_text("sources:\n  aiview: {profile: connectors/profiles/aiview.yaml, mapping: mappings/aiview.yaml, "
                    f"targets: [{', '.join(targets)}]}}\n")


@pytest.fixture
def world(settings, monkeypatch, tmp_path):
    sources = tmp_path / "sources.yaml"
    write_sources(sources, ["ehr", "grouphr", "hrcloud"])
    monkeypatch.setenv("HIRESYNC_SOURCES", str(sources))
    monkeypatch.setenv("HIRESYNC_WORKFLOW", str(tmp_path / "no-workflow.yaml"))
    outbox_mod.CIRCUITS.clear()
    with AIViewSimulator(count=12, seed=7, defect_rate=0, rescore_rate=0) as sim, \
            GroupHRSimulator() as grouphr, HRCloudSimulator() as hrcloud:
        connect(monkeypatch, sim)
        connect(monkeypatch, grouphr, "hiresync_grouphr")
        connect(monkeypatch, hrcloud, "hiresync_hrcloud")
        from hiresync.config.settings import Settings

        yield Settings.from_env(), sim, grouphr, hrcloud, sources
    outbox_mod.CIRCUITS.clear()


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def decrypted_hub(settings, keys: Keyring) -> str:
    """Every encrypted value in the hub, decrypted."""
    out = []
    with transaction(settings.hub_url) as s:
        for cand in s.scalars(select(Candidate)):
            out += [keys.decrypt(getattr(cand, f"{f}_enc"), f"candidates.{f}:{cand.candidate_key}")
                    for f, _ in CANDIDATE_PII if getattr(cand, f"{f}_enc")]
        for col in COLUMNS:
            for row in s.scalars(select(col.model).where(getattr(col.model, col.column).is_not(None))):
                out.append(keys.decrypt(getattr(row, col.column), col.context(row)))
    return "\n".join(out)


def staged_text(settings, keys: Keyring) -> str:
    out = []
    if settings.staging_dir.exists():
        with transaction(settings.hub_url) as s:
            run_ids = list(s.scalars(select(Run.id)))
        for run_id in run_ids:
            st = Staging(settings.staging_dir, run_id, keys)
            for enc in st.dir.glob("*.enc") if st.dir.exists() else []:
                out.append(json.dumps(list(st.read_records(enc.stem)), ensure_ascii=False))
    return "\n".join(out)


def test_export_holds_and_erase_removes_every_copy_and_every_past_target_is_asked(world, tmp_path):
    settings, sim, grouphr, hrcloud, sources = world
    keys = Keyring.load(settings.key_file)
    assert run_source("aiview", settings)["inserted"] == 12  # loaded and delivered to three targets
    rec = sim.records()[0]
    nid, name = rec["candidate"]["id_card"], rec["candidate"]["name"]
    values = personal_values([rec]) | {rec["interview"]["video"]["url"]}

    # A quarantined result of theirs (a status no mapping knows) and an identity review (their ID, another name).
    bad = copy.deepcopy(rec)
    bad.update(result_id="Q-1")
    bad["evaluation"]["result"] = "无此结论"
    other_name = copy.deepcopy(rec)
    other_name.update(result_id="R-1")
    other_name["candidate"]["name"] = "欧阳娜娜"
    counts = sync(settings, "seed-quarantine", [bad, other_name])
    assert counts["quarantined"] == 2
    assert count(settings, IdentityReview) == 1
    Staging(settings.staging_dir, "seed-quarantine", keys).remove()  # loaded: a run removes its staging when done
    # A webhook delivery naming them, waiting in the inbox.
    with transaction(settings.hub_url) as s:
        inbox.store(s, keys, "kuaipin", [("d-1", json.dumps({"id": "d-1", "data": {"candidate": {
            "id_number": nid, "name": name}}}, ensure_ascii=False))])
    # Staging left by a crashed run.
    ctx = RunContext.open("aiview", "crashed-run", settings)
    with ctx.transaction() as s:
        s.add(Run(id="crashed-run", source="aiview", status="extracting"))
    ctx.staging.write_records("raw", [{"payload": p, "hash": payload_hash(p)} for p in sim.records()[:3]])
    # grouphr received them, and is removed from sources.yaml since.
    write_sources(sources, ["ehr", "hrcloud"])

    export_file = tmp_path / "export.json"
    done = CliRunner().invoke(app, ["subject", "export", "--national-id", nid, "--out", str(export_file),
                                    "--operator", "dpo"])
    assert done.exit_code == 0, done.output
    doc = json.loads(export_file.read_text(encoding="utf-8"))
    assert doc["candidate"]["national_id"] == nid.upper()
    assert [r["vendor_result_id"] for r in doc["interview_results"]] == [rec["result_id"]]
    assert {q["vendor_result_id"] for q in doc["quarantine"]} == {"Q-1", "R-1"}
    assert {p["vendor_result_id"] for p in doc["raw_payloads"]} == {rec["result_id"], "Q-1", "R-1"}
    assert [r["vendor_result_id"] for r in doc["identity_reviews"]] == ["R-1"]
    assert [d["delivery_id"] for d in doc["inbox"]] == ["d-1"] and doc["inbox"][0]["payload"]["data"]
    assert sorted(o["target"] for o in doc["outbox"]) == ["ehr", "grouphr", "hrcloud"]
    assert [st["run_id"] for st in doc["staging"]] == ["crashed-run"]
    assert [r["payload"]["result_id"] for r in doc["staging"][0]["files"]["raw"]] == [rec["result_id"]]
    assert not leaks(done.output, values)
    from hiresync.privacy.recipients import load_policy

    # The HR cloud knows the candidate by a key of its own (finding 12), never the hub's.
    cloud_key = load_policy(settings, "hrcloud").candidate_key_for(doc["candidate"]["candidate_key"], keys)
    refs = {r.get("candidate_ref") for r in hrcloud.records.values()}
    assert cloud_key in refs and doc["candidate"]["candidate_key"] not in refs

    done = CliRunner().invoke(app, ["subject", "erase", "--national-id", nid, "--operator", "dpo", "--yes"])
    assert done.exit_code == 0, done.output
    assert not leaks(done.output, values)

    # Nothing of them by blind index, by decryption, by plaintext scan, in staging.
    assert count(settings, Candidate, Candidate.national_id_bidx.in_(keys.blind_indexes(nid.upper(), "national_id"))) == 0
    assert not leaks(decrypted_hub(settings, keys), values)
    assert not leaks(hub_plaintext(settings.hub_url), values)
    assert not leaks(staged_text(settings, keys), values)
    assert count(settings, Quarantine) == 0 and count(settings, IdentityReview) == 0
    assert count(settings, InboxDelivery) == 0
    assert count(settings, InterviewResult) == 11  # the others stay
    assert count(settings, RawPayload, RawPayload.payload_enc.is_not(None)) == 11
    # The delivery history stays as value-free rows; the tombstone names counts and targets only.
    assert count(settings, Outbox, Outbox.status == "erased") == 3
    with transaction(settings.hub_url) as s:
        tomb = s.scalars(select(AuditEvent).where(AuditEvent.kind == "subject_erase")).one()
    assert tomb.detail["erase_requests"] == ["ehr", "grouphr", "hrcloud"]
    assert tomb.detail["raw_payloads"] == 3 and tomb.detail["inbox"] == 1 and tomb.detail["staging_runs"] == 1
    ck = tomb.subject_ref.split(":", 1)[1]

    # Every target that ever received them gets the request, grouphr too.
    for target in ("ehr", "grouphr", "hrcloud"):
        assert relay(settings, keys, target) == 1
    assert ck in grouphr.erased and cloud_key in hrcloud.erased
    assert cloud_key not in {r.get("candidate_ref") for r in hrcloud.records.values()}
    with engine_for(settings.ehr_url).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ehr_sql.ehr_candidates).where(
            ehr_sql.ehr_candidates.c.candidate_key == ck)) == 0
    # The export is all of it: erase found exactly what export wrote.
    assert {k: tomb.detail[k] for k in ("raw_payloads", "quarantine", "identity_reviews", "inbox", "outbox")} == {
        "raw_payloads": len(doc["raw_payloads"]), "quarantine": len(doc["quarantine"]),
        "identity_reviews": len(doc["identity_reviews"]), "inbox": len(doc["inbox"]), "outbox": len(doc["outbox"])}
