"""The canonical-record GX suite: each rule catches what it guards; failing rows are quarantined per field."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import yaml
from sqlalchemy import select

from hiresync.contract.canonical_suite import validate_records
from hiresync.hub.models import InterviewResult, Quarantine
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec
from hiresync.pipeline.runner import run_source
from simulators.aiview import AIViewSimulator
from tests.helpers import REPO, connect
from tests.test_drift import EditedAIView

NOW = datetime(2026, 12, 31, tzinfo=timezone.utc)


def mapped_batch(n: int = 12) -> tuple[MappingSpec, list[tuple[int, dict]]]:
    spec = MappingSpec.load(REPO / "mappings/aiview.yaml")
    payloads = AIViewSimulator(count=n, seed=21, defect_rate=0, rescore_rate=0).records()
    return spec, [(row, spec.map(p)[0]) for row, p in enumerate(payloads)]


def test_each_rule_flags_exactly_its_row_and_field():
    spec, batch = mapped_batch()
    records = dict(batch)
    records[0]["result"]["status"] = "approved"
    records[1]["result"]["overall_score"] = 130.0
    records[2]["dimensions"][0]["score"] = -5.0
    records[3]["result"]["completed_at"] = "2026-01-01T00:00:00+00:00"  # before it started
    records[4]["result"]["completed_at"] = (NOW + timedelta(days=1)).isoformat()
    records[4]["result"]["started_at"] = NOW.isoformat()
    records[5]["candidate"]["national_id"] = records[5]["candidate"]["national_id"][:-1] + (
        "0" if records[5]["candidate"]["national_id"][-1] != "0" else "1")
    records[6]["candidate"]["mobile"] = "+86 123"
    records[7]["result"]["overall_score"] = None
    # Two different payloads claiming the same newest version of one result: ambiguous.
    twin = copy.deepcopy(records[8])
    twin["result"]["ai_comment"] = "a different comment"
    # An older version of result 9 and an exact repeat of result 10 are fine.
    older = copy.deepcopy(records[9])
    older["result"]["source_updated_at"] = "2026-01-02T00:00:00+00:00"
    batch += [(12, twin), (13, older), (14, copy.deepcopy(records[10]))]

    problems, summary = validate_records(batch, spec, "test.canonical", now=NOW)

    found = {row: {(p["field"], p["rule"]) for p in ps} for row, ps in problems.items()}
    assert found == {
        0: {("status", "STATUS_SET")},
        1: {("overall_score", "RANGE")},
        2: {("dimensions.score", "RANGE")},
        3: {("completed_at", "ORDER")},
        4: {("completed_at", "FUTURE")},
        5: {("candidate.national_id", "ID_CHECKSUM")},
        6: {("candidate.mobile", "MOBILE_FORMAT")},
        7: {("overall_score", "NOT_NULL")},
        8: {("record.key", "DUPLICATE_KEY")},
        12: {("record.key", "DUPLICATE_KEY")},
    }
    assert problems[5][0]["value"].count("*") == 8  # the resident ID is masked
    assert summary["rows"] == 15 and summary["failed_rows"] == 10
    assert {e["rule"] for e in summary["expectations"] if not e["success"]} >= {"STATUS_SET", "FUTURE", "ORDER"}


def test_a_clean_batch_passes():
    spec, batch = mapped_batch()
    problems, summary = validate_records(batch, spec, "test.canonical", now=NOW)
    assert problems == {} and summary["failed_rows"] == 0 and all(e["success"] for e in summary["expectations"])


def test_canonical_failures_are_quarantined_per_field_in_the_pipeline(settings, monkeypatch, tmp_path):
    """A mapping with overall_score optional lets a payload without a score past the raw suite and the
    mapper; the canonical suite's NOT_NULL on a must-map field stops it before load."""
    spec = yaml.safe_load((REPO / "mappings/aiview.yaml").read_text(encoding="utf-8"))
    spec["result"]["overall_score"]["required"] = False
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"sources": {"aiview": {
        "profile": str(REPO / "connectors/profiles/aiview.yaml"), "mapping": str(tmp_path / "m.yaml")}}}),
        encoding="utf-8")
    settings = replace(settings, sources_file=tmp_path / "s.yaml")
    unscored = set()

    def drop_score(i: int, record: dict) -> None:
        if i % 10 == 0:
            del record["evaluation"]["total_score"]
            unscored.add(record["result_id"])

    with EditedAIView(drop_score, count=40, seed=8, defect_rate=0, rescore_rate=0) as sim:
        connect(monkeypatch, sim)
        summary = run_source("aiview", settings)

    assert summary["quarantined"] == len(unscored) == 4 and summary["inserted"] == 36
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(Quarantine)).all()
        loaded = set(s.scalars(select(InterviewResult.vendor_result_id)))
    assert {q.vendor_result_id for q in rows} == unscored and not loaded & unscored
    assert all(q.reason_code == "NOT_NULL" and q.problems == [{"field": "overall_score", "rule": "NOT_NULL",
                                                               "value": "null"}] for q in rows)
