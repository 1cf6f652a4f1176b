"""Identity resolution: one person is one candidate; a doubtful match waits for a person."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from hiresync.privacy import identifiers
from hiresync.cli import app
from hiresync.errors import HireSyncError
from hiresync.hub.models import Candidate, IdentityReview, InterviewResult, Quarantine, Run
from hiresync.hub.store import transaction
from hiresync.load.identity import list_reviews, resolve_review
from hiresync.pipeline.context import RunContext
from hiresync.pipeline.extract import payload_hash
from hiresync.pipeline.load import load
from hiresync.pipeline.transform import map_records
from hiresync.pipeline.validate import validate
from tests.test_mapping import PAYLOAD


def payload(result_id: str, national_id: str = "11010519491231002X", name: str = "王芳",
            mobile: str = "13800138000", email: str = "wang.fang@163.com", updated: str = "2026-11-03T01:45:00Z") -> dict:
    p = copy.deepcopy(PAYLOAD)
    p["result_id"] = result_id
    p["updated_at"] = updated
    p["candidate"].update(id_card=national_id, name=name, mobile=mobile, email=email, id=f"C-{result_id}")
    return p


def another_id() -> str:
    return "44030519880808123" + identifiers.id_check_char("44030519880808123")


def sync(settings, run_id: str, payloads: list[dict]) -> dict:
    """The validate -> map -> load steps on payloads staged as extract would have staged them."""
    ctx = RunContext.open("aiview", run_id, settings)
    with ctx.transaction() as s:
        s.add(Run(id=run_id, source="aiview", status="extracting"))
    ctx.staging.write_records("raw", ({"payload": p, "hash": payload_hash(p)} for p in payloads))
    ctx.staging.write_json("manifest", {"max_cursor": None, "pulled": len(payloads)})
    validate(ctx)
    map_records(ctx)
    return load(ctx)


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_retakes_and_other_vendor_accounts_resolve_to_one_candidate(settings):
    counts = sync(settings, "r1", [payload("A-1"), payload("A-2", mobile="13900139000")])
    assert counts["inserted"] == 2 and count(settings, Candidate) == 1


def test_a_known_id_with_another_name_waits_for_review(settings):
    sync(settings, "r1", [payload("A-1")])
    counts = sync(settings, "r2", [payload("A-2", name="李雷")])

    assert counts["quarantined"] == 1 and counts["inserted"] == 0
    assert count(settings, Candidate) == 1
    with transaction(settings.hub_url) as s:
        q = s.scalars(select(Quarantine)).one()
    assert q.reason_code == "NAME_MISMATCH" and q.vendor_result_id == "A-2"
    reviews = list_reviews(settings)
    assert [(r["kind"], r["vendor_result_id"]) for r in reviews] == [("NAME_MISMATCH", "A-2")]
    assert reviews[0]["details"]["stored_name"] == "王*" and "李雷" not in str(reviews)

    # The same result pulled again before anyone decided: still one review.
    sync(settings, "r3", [payload("A-2", name="李雷", updated="2026-11-03T02:00:00Z")])
    assert count(settings, IdentityReview) == 1

    with pytest.raises(HireSyncError):
        resolve_review(settings, reviews[0]["id"], same_person=False, operator="hr-zhao")
    resolve_review(settings, reviews[0]["id"], same_person=True, operator="hr-zhao")
    counts = sync(settings, "r4", [payload("A-2", name="李雷", updated="2026-11-03T02:00:00Z")])
    assert counts["inserted"] == 1 and count(settings, Candidate) == 1


def test_one_batch_with_a_known_id_under_two_names_holds_back_only_the_other_name(settings):
    """Found by the million-result benchmark: a batch holding two results of one known person, the
    newest under another name, crashed the load (KeyError). The other name waits for review; the
    result under the known name loads."""
    sync(settings, "r1", [payload("A-1")])
    counts = sync(settings, "r2", [payload("A-2", updated="2026-11-03T02:00:00Z"),
                                   payload("A-3", name="李雷", updated="2026-11-03T03:00:00Z")])

    assert counts["inserted"] == 1 and counts["quarantined"] == 1 and count(settings, Candidate) == 1
    with transaction(settings.hub_url) as s:
        assert s.scalars(select(Quarantine.vendor_result_id)).all() == ["A-3"]
        assert len(set(s.scalars(select(InterviewResult.candidate_id)))) == 1
    assert [(r["kind"], r["vendor_result_id"]) for r in list_reviews(settings)] == [("NAME_MISMATCH", "A-3")]


def test_one_batch_with_a_new_id_under_two_names_holds_back_the_older_name(settings):
    """A new person's candidate is made from the newest result; an older one of the same batch under
    another name is a conflict with it, not silently attached."""
    counts = sync(settings, "r1", [payload("A-1", name="李雷", updated="2026-11-03T01:00:00Z"),
                                   payload("A-2", updated="2026-11-03T02:00:00Z")])

    assert counts["inserted"] == 1 and counts["quarantined"] == 1 and count(settings, Candidate) == 1
    review = list_reviews(settings)[0]
    assert (review["kind"], review["vendor_result_id"]) == ("NAME_MISMATCH", "A-1")
    assert review["details"]["stored_name"] == "王*" and review["details"]["incoming_name"] == "李*"


def test_a_new_id_with_a_known_phone_and_email_waits_for_review(settings):
    sync(settings, "r1", [payload("A-1")])
    counts = sync(settings, "r2", [payload("B-1", national_id=another_id(), name="王芳")])

    assert counts["quarantined"] == 1 and count(settings, Candidate) == 1
    review = list_reviews(settings)[0]
    assert review["kind"] == "ID_MISMATCH" and review["details"]["mobile"] == "138****8000"

    result = CliRunner().invoke(app, ["identity", "resolve", str(review["id"]), "--different-person", "--operator", "hr"])
    assert result.exit_code == 0, result.output
    counts = sync(settings, "r3", [payload("B-1", national_id=another_id(), name="王芳")])
    assert counts["inserted"] == 1 and count(settings, Candidate) == 2


def test_same_person_decision_attaches_the_result_to_the_existing_candidate(settings):
    sync(settings, "r1", [payload("A-1")])
    sync(settings, "r2", [payload("B-1", national_id=another_id())])
    resolve_review(settings, list_reviews(settings)[0]["id"], same_person=True, operator="hr")

    sync(settings, "r3", [payload("B-1", national_id=another_id())])

    assert count(settings, Candidate) == 1
    with transaction(settings.hub_url) as s:
        owners = set(s.scalars(select(InterviewResult.candidate_id)))
    assert len(owners) == 1


def test_identity_review_command_shows_masked_conflicts(sqlite_settings):
    sync(sqlite_settings, "r1", [payload("A-1")])
    sync(sqlite_settings, "r2", [payload("A-2", name="李雷")])
    out = CliRunner().invoke(app, ["identity", "review"]).output
    assert "NAME_MISMATCH" in out and "aiview:A-2" in out
    assert "李雷" not in out and "11010519491231002X" not in out


def test_spacing_and_case_of_a_name_are_not_a_conflict(sqlite_settings):
    sync(sqlite_settings, "r1", [payload("A-1", name="王芳")])
    counts = sync(sqlite_settings, "r2", [payload("A-2", name="王 芳")])
    assert counts["inserted"] == 1 and counts["quarantined"] == 0
