"""`hiresync trace` and `hiresync explain`: a record's journey and its decision, from the hub's
audit trail, masked; on every hub database."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import Candidate
from hiresync.hub.store import transaction
from hiresync.pipeline.runner import run_source
from tests.helpers import leaks, personal_values


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def vendor_record(sim, result_id: str) -> dict:
    """The simulator's current version of a result (what the hub must show as stored)."""
    return max((r for r in sim.records() if r["result_id"] == result_id), key=lambda r: r["updated_at"])


def test_trace_shows_every_payload_version_the_rules_the_result_and_the_delivery(settings, aiview):
    run = run_source("aiview", settings)
    rid = sorted(aiview.rescored - set(aiview.defects))[0]
    values = personal_values(aiview.records())

    out = cli("trace", f"aiview:{rid}", "--json")
    assert out.exit_code == 0, out.output
    assert leaks(out.output, values) == []
    (rec,) = json.loads(out.output)["records"]
    assert rec["result_key"] == f"aiview:{rid}"
    # Re-scored in the same pull: the older version is superseded, the newer one inserted.
    assert [p["outcome"] for p in rec["payloads"]] == ["superseded", "inserted"]
    assert all(p["run_id"] == run["run_id"] and p["validation"]["passed"] for p in rec["payloads"])
    assert len({p["payload_hash"] for p in rec["payloads"]}) == 2

    fields = {f["field"]: f for f in rec["mapping"]["fields"]}
    assert rec["mapping"]["version"] == "1.0.0" and len(rec["mapping"]["fingerprint"]) == 12
    assert fields["status"]["vendor_path"] == "evaluation.result"
    assert fields["status"]["values"] == {"pass": "passed", "fail": "failed", "pending": "pending_review"}
    assert fields["overall_score"]["scale"] == "evaluation.full_score"
    assert fields["candidate.national_id"]["pii"] is True and "*" in fields["candidate.national_id"]["vendor_value"]
    assert fields["dimensions.score"]["vendor_path"] == "evaluation.dimensions[].score"

    vendor = vendor_record(aiview, rid)
    result = rec["result"]
    assert result["raw_score"] == vendor["evaluation"]["total_score"]
    assert result["status"] == fields["status"]["values"][vendor["evaluation"]["result"]]
    assert result["candidate"]["national_id"].startswith(vendor["candidate"]["id_card"][:6] + "********")
    assert [d["code"] for d in result["dimensions"]] == [d["code"] for d in vendor["evaluation"]["dimensions"]]

    (delivery,) = rec["deliveries"]
    assert delivery["target"] == "ehr" and delivery["status"] == "sent" and delivery["attempts"] == 1
    assert delivery["target_ref"] == f"aiview:{rid}" and delivery["sent_at"]

    text = cli("trace", rid)
    assert text.exit_code == 0 and leaks(text.output, values) == []
    assert "superseded" in text.output and f"target ref aiview:{rid}" in text.output and "evaluation.result" in text.output


def test_trace_of_a_quarantined_record_gives_the_reasons(settings, aiview):
    run_source("aiview", settings)
    rid = sorted(aiview.defects)[0]

    out = cli("trace", rid, "--json")
    assert out.exit_code == 0, out.output
    (rec,) = json.loads(out.output)["records"]
    (payload,) = rec["payloads"]
    assert payload["outcome"] == "quarantined" and payload["validation"]["passed"] is False
    assert payload["validation"]["reason_code"] == payload["validation"]["problems"][0]["rule"]
    assert rec["result"] is None and rec["deliveries"] == []
    assert leaks(out.output, personal_values(aiview.records())) == []


def test_an_unknown_record_is_said_plainly(settings, aiview):
    run_source("aiview", settings)
    for query in ("aiview:AV-99999999", "nothing-like-this", "110105********002X"):
        out = cli("trace", query)
        assert out.exit_code == 1
        assert "no record" in out.output or "no candidate" in out.output
    assert cli("explain", "aiview:AV-99999999").exit_code == 1


def test_a_masked_id_finds_its_candidate_or_lists_all_it_could_be(settings, aiview):
    run_source("aiview", settings)
    with transaction(settings.hub_url) as s:
        cand = s.scalars(select(Candidate).order_by(Candidate.id)).first()
        masked, key = cand.national_id_masked, cand.candidate_key

    out = cli("trace", masked, "--json")
    assert out.exit_code == 0, out.output
    assert {r["result"]["candidate"]["candidate_key"] for r in json.loads(out.output)["records"]} == {key}

    with transaction(settings.hub_url) as s:  # a second person whose ID masks the same way
        twin = {c.name: getattr(cand, c.name) for c in Candidate.__table__.columns if c.name != "id"}
        s.add(Candidate(**twin | {"candidate_key": "00000000-0000-4000-8000-000000000001",
                                  "national_id_bidx": "0" * 64, "full_name_masked": "王*"}))
    out = cli("trace", masked)
    assert out.exit_code == 1
    assert "2 candidates match" in out.output and key in out.output and "00000000-0000-4000-8000-000000000001" in out.output


def test_explain_derives_status_and_score_from_the_vendor_decision(settings, aiview):
    run_source("aiview", settings)
    rid = sorted(aiview.rescored - set(aiview.defects))[0]
    vendor = vendor_record(aiview, rid)["evaluation"]

    out = cli("explain", f"aiview:{rid}", "--json")
    assert out.exit_code == 0, out.output
    (doc,) = json.loads(out.output)["results"]
    status = doc["status"]
    assert status["derived_from"]["vendor_path"] == "evaluation.result"
    assert status["derived_from"]["vendor_value"] == vendor["result"]
    assert status["value"] == status["derived_from"]["value_map"][vendor["result"]]
    assert status["thresholds"] == [] and "no score threshold" in status["basis"]
    assert doc["score"]["raw"] == vendor["total_score"] and doc["score"]["scale"] == vendor["full_score"]
    assert doc["score"]["normalised"] == round(vendor["total_score"] / vendor["full_score"] * 100, 2)
    assert [d["raw_score"] for d in doc["dimensions"]] == [d["score"] for d in vendor["dimensions"]]
    assert doc["human_review"] == {"reviewed": False, "note": doc["human_review"]["note"]}
    assert "PIPL Art. 24" in doc["human_review"]["note"]

    text = cli("explain", rid)
    assert text.exit_code == 0
    assert f"{vendor['result']!r} -> {status['value']!r}" in text.output and "人工复核" in text.output
    assert leaks(text.output, personal_values(aiview.records())) == []
