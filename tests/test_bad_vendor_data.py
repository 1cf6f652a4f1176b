"""A vendor's bad day never stops, corrupts or silently ends a feed (issue 11, findings 1, 2, 4 and 10):
each bad record ends in quarantine with its field and rule, the rest of the batch loads, and the
watermark stays where the good data is. Against the AIView simulator serving the bad bytes verbatim."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from connectors.targets.ehr_sql import ehr_interview_results
from hiresync.hub.models import Candidate, InterviewResult, Quarantine, RawPayload, Watermark
from hiresync.hub.store import engine_for, transaction
from hiresync.pipeline.runner import run_source

FAR_FUTURE = int(datetime(2099, 1, 1, tzinfo=timezone.utc).timestamp())


def _record(aiview, result_id: str, **changes) -> dict:
    """A clean record of the simulator's, under a new result id, with `changes` applied."""
    rec = json.loads(json.dumps(next(r for r in aiview.records() if r["result_id"] not in aiview.defects)))
    rec["result_id"] = result_id
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = rec
        for part in parents:
            node = node[part]
        node[leaf] = value
    return rec


def _quarantined(settings, result_id: str) -> Quarantine | None:
    with transaction(settings.hub_url) as s:
        return s.scalars(select(Quarantine).where(Quarantine.vendor_result_id == result_id)).one_or_none()


def _stamp(aiview) -> int:
    return int(datetime.fromisoformat(aiview.max_updated_at.replace("Z", "+00:00")).timestamp()) - 60


def test_a_far_future_cursor_is_quarantined_and_never_moves_the_watermark(settings, aiview):
    rec = _record(aiview, "AV-FUTURE", updated_at="2099-01-01T00:00:00Z")
    aiview.put_raw(json.dumps(rec).encode(), FAR_FUTURE, "AV-FUTURE")

    first = run_source("aiview", settings)

    q = _quarantined(settings, "AV-FUTURE")
    assert q is not None and q.reason_code == "FUTURE_CURSOR" and q.problems[0]["field"] == "updated_at"
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, "aiview").cursor_value
    assert mark < datetime.now(timezone.utc)
    assert first["pulled"] == first["inserted"] + first["updated"] + first["unchanged"] + first["quarantined"]
    # the feed goes on: a result the vendor publishes now is still pulled
    now = datetime.now(timezone.utc).replace(microsecond=0)
    later = _record(aiview, "AV-LATER", updated_at=now.isoformat().replace("+00:00", "Z"))
    aiview.put_raw(json.dumps(later).encode(), int(now.timestamp()), "AV-LATER")
    second = run_source("aiview", settings)
    assert second["inserted"] == 1
    assert _quarantined(settings, "AV-FUTURE") is not None  # still the one row: seen again, not added again


def test_a_future_watermark_left_from_before_is_an_issue_with_the_command_that_resets_it(settings, aiview):
    from hiresync.cli import app
    from hiresync.monitor.sync_status import sync_status

    run_source("aiview", settings)
    with transaction(settings.hub_url) as s:
        s.get(Watermark, "aiview").cursor_value = datetime(2099, 1, 1, tzinfo=timezone.utc)
    issues = [i for i in sync_status(settings)["issues"] if i["code"] == "future_watermark"]
    assert len(issues) == 1 and "hiresync source reset-watermark aiview" in issues[0]["detail"]

    result = CliRunner().invoke(app, ["source", "reset-watermark", "aiview"])
    assert result.exit_code == 0, result.output
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, "aiview").cursor_value
        newest = s.scalar(select(func.max(InterviewResult.source_updated_at)))
    assert mark == newest
    assert not [i for i in sync_status(settings)["issues"] if i["code"] == "future_watermark"]
    aiview.rescore(2)
    assert run_source("aiview", settings)["updated"] == 2  # the feed flows again


def test_bytes_invalid_in_the_charset_quarantine_the_record_and_never_reach_the_hub_as_replacement(settings, aiview):
    rec = _record(aiview, "AV-GBK")
    body = json.dumps(rec, ensure_ascii=False).encode()
    body = body.replace(json.dumps(rec["candidate"]["name"], ensure_ascii=False).encode(), b'"\xd5\xc5\xce\xb0"')
    aiview.put_raw(body, _stamp(aiview), "AV-GBK")

    summary = run_source("aiview", settings)

    q = _quarantined(settings, "AV-GBK")
    assert q is not None and q.reason_code == "ENCODING" and q.problems[0]["field"] == "candidate.name"
    assert summary["inserted"] == 300 - len(aiview.defects)  # the rest of the batch loaded
    with transaction(settings.hub_url) as s:
        assert s.scalar(select(func.count()).select_from(InterviewResult)
                        .where(InterviewResult.vendor_result_id == "AV-GBK")) == 0
        names = [c for c in s.scalars(select(Candidate.full_name_masked))]
    assert not any("\ufffd" in (n or "") for n in names)
    with engine_for(settings.ehr_url).connect() as conn:
        rows = conn.execute(select(ehr_interview_results)).mappings().all()
    assert rows and not any("\ufffd" in str(v) for r in rows for v in r.values())


def test_a_record_nested_five_thousand_levels_deep_is_quarantined_and_the_batch_goes_on(settings, aiview):
    deep = "[" * 5000 + "]" * 5000
    rec = _record(aiview, "AV-DEEP")
    body = json.dumps(rec).encode()[:-1] + b', "extra": ' + deep.encode() + b"}"
    aiview.put_raw(body, _stamp(aiview), "AV-DEEP")

    summary = run_source("aiview", settings)

    q = _quarantined(settings, "AV-DEEP")
    assert q is not None and q.reason_code == "TOO_DEEP"
    assert summary["status"] == "success" and summary["inserted"] == 300 - len(aiview.defects)


def test_a_huge_field_is_quarantined_and_not_copied_into_the_hub(settings, aiview):
    rec = _record(aiview, "AV-HUGE")
    rec["evaluation"]["comment"] = "很长的转写文本" * 300_000  # about 2 M characters, 6 MB
    aiview.put_raw(json.dumps(rec, ensure_ascii=False).encode(), _stamp(aiview), "AV-HUGE")

    run_source("aiview", settings)

    q = _quarantined(settings, "AV-HUGE")
    assert q is not None and q.reason_code == "TOO_LARGE" and q.problems[0]["field"] == "evaluation.comment"
    with transaction(settings.hub_url) as s:
        kept = s.get(RawPayload, q.raw_payload_id).payload_enc
    assert len(kept) < 20_000  # the cut copy, not 6 MB



_json = st.recursive(st.none() | st.integers() | st.text(alphabet="ab王\udc81", max_size=6),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text("xy", max_size=2), children,
                                                                                        max_size=3),
                     max_leaves=15)


@settings(max_examples=400, deadline=None)
@given(_json, st.integers(1, 4), st.integers(1, 5))
def test_the_quick_shape_check_agrees_with_the_one_that_names_the_field(payload, depth, chars):
    """check_shape first asks bounds._within (no paths built), then _first_breach names the breach:
    the two must agree on every payload, or a breach would pass unnamed or a good record be cut."""
    from datetime import timedelta

    from hiresync.ingest.bounds import Limits, _first_breach, _within

    limits = Limits(max_depth=depth, max_field_chars=chars, future_tolerance=timedelta(0))
    assert _within(payload, limits) == (_first_breach(payload, limits) is None)
