"""Mapping types (issue 11, finding 8): datetime formats like the profile cursor, resident IDs
with inner spaces, free text that keeps its line breaks and full-width punctuation; the raw GX
suite agrees with the mapper on all of them."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from hiresync.contract import raw_suite
from hiresync.contract.gx import validate_frame
from hiresync.errors import ConfigError
from hiresync.mapping.spec import MappingSpec, clean_free_text

BASE = {
    "mapping": "novo", "version": "1.0.0", "vendor": "novo", "key": "id",
    "candidate": {"full_name": {"path": "name", "type": "text", "required": True},
                  "national_id": {"path": "idNo", "type": "national_id", "required": True}},
    "result": {
        "started_at": {"path": "startTime", "type": "datetime", "format": "%Y/%m/%d %H:%M", "timezone": "Asia/Shanghai"},
        "completed_at": {"path": "endTime", "type": "datetime", "format": "epoch_s"},
        "overall_score": {"path": "score", "type": "score", "scale": 100, "required": True},
        "ai_comment": {"path": "aiComment", "type": "free_text"},
        "status": {"path": "result", "type": "enum", "required": True, "values": {"PASS": "passed", "FAIL": "failed"}},
        "source_updated_at": {"path": "modifiedTime", "type": "datetime", "format": "epoch_ms", "required": True},
    },
}

PAYLOAD = {
    "id": "N-1", "name": "王芳", "idNo": "110105 19491231 002x", "score": 88,
    "startTime": "2025/11/25 14:00", "endTime": 1764052200, "result": "PASS",
    "aiComment": "表达清晰，逻辑严谨。\r\n建议：复试时重点考察团队协作！\n\n\n  第三段  ",
    "modifiedTime": 1764052200000,
}


def _spec(tmp_path, doc=BASE) -> MappingSpec:
    path = tmp_path / "novo.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return MappingSpec.load(path)


def test_datetime_formats_epoch_ms_epoch_s_and_strftime_with_timezone(tmp_path):
    record, problems = _spec(tmp_path).map(PAYLOAD)
    assert problems == []
    r = record["result"]
    assert r["source_updated_at"] == "2025-11-25T06:30:00+00:00"   # 1764052200000 ms
    assert r["completed_at"] == "2025-11-25T06:30:00+00:00"        # 1764052200 s
    assert r["started_at"] == "2025-11-25T06:00:00+00:00"          # Beijing wall-clock 14:00
    # epoch_ms as text is read too; a value in another shape is a DATETIME error, not a guess
    assert _spec(tmp_path).map(PAYLOAD | {"modifiedTime": "1764052200000"})[0]["result"]["source_updated_at"] == \
        "2025-11-25T06:30:00+00:00"
    _, problems = _spec(tmp_path).map(PAYLOAD | {"modifiedTime": "2025-11-25T06:30:00Z"})
    assert [(p.field, p.rule) for p in problems] == [("source_updated_at", "DATETIME")]
    _, problems = _spec(tmp_path).map(PAYLOAD | {"startTime": "2025-11-25T14:00:00"})
    assert [(p.field, p.rule) for p in problems] == [("started_at", "DATETIME")]


def test_iso_format_refuses_epoch_numbers_and_the_default_keeps_both(tmp_path):
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc["result"]["completed_at"] = {"path": "endTime", "type": "datetime", "format": "iso"}
    _, problems = _spec(tmp_path, doc).map(PAYLOAD)
    assert [(p.field, p.rule) for p in problems] == [("completed_at", "DATETIME")]
    doc["result"]["completed_at"] = {"path": "endTime", "type": "datetime"}   # no format: ISO text or epoch seconds
    record, problems = _spec(tmp_path, doc).map(PAYLOAD)
    assert problems == [] and record["result"]["completed_at"] == "2025-11-25T06:30:00+00:00"


@pytest.mark.parametrize("change,key,message", [
    (lambda d: d["result"]["source_updated_at"].update(format="millis"), "result.source_updated_at.format",
     "iso, epoch_s, epoch_ms"),
    (lambda d: d["result"]["started_at"].update(timezone="Beijing"), "result.started_at.timezone", "IANA timezone"),
    (lambda d: d["result"]["ai_comment"].update(format="iso"), "result.ai_comment.format", "datetime"),
])
def test_a_bad_format_or_timezone_is_refused_at_load(tmp_path, change, key, message):
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    change(doc)
    with pytest.raises(ConfigError) as err:
        _spec(tmp_path, doc)
    assert key in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("raw", ["110105 19491231 002x", "110105\u300019491231\u3000002X", " 1101 0519 4912 3100 2X "])
def test_national_id_with_inner_whitespace_is_accepted(tmp_path, raw):
    record, problems = _spec(tmp_path).map(PAYLOAD | {"idNo": raw})
    assert problems == [] and record["candidate"]["national_id"] == "11010519491231002X"


def test_free_text_keeps_line_breaks_and_full_width_punctuation(tmp_path):
    record, _ = _spec(tmp_path).map(PAYLOAD)
    assert record["result"]["ai_comment"] == "表达清晰，逻辑严谨。\n建议：复试时重点考察团队协作！\n\n第三段"
    # full-width letters and digits still fold; punctuation and line breaks stay; control characters go
    assert clean_free_text("得分ＡＢ１２，很好\t！\x07\r第二行") == "得分AB12，很好 ！\n第二行"
    # plain text still folds and collapses (names, departments)
    assert _spec(tmp_path).map(PAYLOAD | {"name": " 王\n芳 "})[0]["candidate"]["full_name"] == "王 芳"


def test_repository_mappings_keep_ai_comments_as_free_text():
    for name in ("aiview", "zhiping", "kuaipin", "dept_reinterview"):
        spec = MappingSpec.load(f"mappings/{name}.yaml")
        comment = next(f for f in spec.fields if f.name == "ai_comment")
        assert comment.type == "free_text", name


def _raw_failures(spec: MappingSpec, payloads: list[dict]) -> set[tuple[str, str, int]]:
    frame = pd.DataFrame(raw_suite.frame_columns(payloads, spec))
    outcome = validate_frame(frame, raw_suite.ROW, raw_suite.checks_for(spec), suite_name="t.raw")
    return {(f.field, f.rule, int(f.key)) for f in outcome.failures}


def test_raw_suite_agrees_with_the_mapper_on_formats_and_spaced_ids(tmp_path):
    spec = _spec(tmp_path)
    good = [PAYLOAD, PAYLOAD | {"modifiedTime": "1764052200000"}, PAYLOAD | {"idNo": "110105 19491231 002X"}]
    bad = [PAYLOAD | {"modifiedTime": "2025-11-25T06:30:00Z"}, PAYLOAD | {"startTime": "2025-11-25T14:00:00"}]
    for payload in good + bad:   # the premise: the mapper's verdicts
        assert (spec.map(payload)[1] == []) == (payload in good)
    failures = _raw_failures(spec, good + bad)
    assert failures == {("source_updated_at", "DATETIME", 3), ("started_at", "DATETIME", 4)}


def test_raw_suite_order_check_uses_the_declared_formats(tmp_path):
    spec = _spec(tmp_path)
    # completed (epoch s) one hour before started (Beijing wall clock): ORDER, from the parsed times
    early = PAYLOAD | {"endTime": 1764052200 - 3600}
    assert _raw_failures(spec, [PAYLOAD, early]) == {("completed_at", "ORDER", 1)}
