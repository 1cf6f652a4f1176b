"""The AIView mapping and the mapping engine's field-level errors."""

from __future__ import annotations

import copy

import pytest

from hiresync.errors import ConfigError
from hiresync.mapping.spec import MappingSpec, normalise_score, FieldError

REPO_MAPPING = "mappings/aiview.yaml"

PAYLOAD = {
    "result_id": "AV-1",
    "candidate": {"id": "AVC-1", "name": " 王　芳 ", "id_card": "11010519491231002x", "mobile": "+86 138 0013 8000",
                  "email": "Wang.Fang@163.com"},
    "job": {"code": "P-RD-001", "title": "后端开发工程师", "department": "研发中心", "business_unit": "智能制造事业部"},
    "interview": {"started_at": "2026-11-03T09:12:00+08:00", "finished_at": "2026-11-03T09:41:00",
                  "video": {"url": "https://video.aiview.example/v/abc", "expires_at": "2026-12-03T09:41:00+08:00"},
                  "report_url": "https://report.aiview.example/r/AV-1"},
    "evaluation": {"total_score": 82.5, "full_score": 100, "comment": "逻辑清晰", "recommendation": "recommend",
                   "result": "pass",
                   "dimensions": [{"code": "logic", "name": "逻辑思维", "score": 4, "full_score": 5, "comment": "好"}]},
    "status": "completed",
    "updated_at": "2026-11-03T01:45:00Z",
}


@pytest.fixture(scope="module")
def spec():
    return MappingSpec.load(REPO_MAPPING)


def test_maps_a_vendor_payload_to_the_canonical_record(spec):
    record, problems = spec.map(PAYLOAD)
    assert problems == []
    assert record["mapping_version"] == "1.0.0" and record["vendor_result_id"] == "AV-1"
    assert record["candidate"] == {"vendor_candidate_id": "AVC-1", "full_name": "王 芳", "national_id": "11010519491231002X",
                                   "mobile": "+8613800138000", "email": "wang.fang@163.com"}
    r = record["result"]
    assert r["started_at"] == "2026-11-03T01:12:00+00:00"
    assert r["completed_at"] == "2026-11-03T01:41:00+00:00"  # naive local time, read as Asia/Shanghai
    assert (r["overall_score"], r["raw_score"], r["score_scale"]) == (82.5, 82.5, 100)
    assert r["status"] == "passed" and r["recommendation"] == "recommended" and r["interviewer"] == "AI: AIView"
    assert record["dimensions"] == [{"code": "logic", "name": "逻辑思维", "score": 80.0, "raw_score": 4.0, "scale": 5.0,
                                     "comment": "好"}]


def test_field_errors_name_field_rule_and_mask_personal_values(spec):
    bad = copy.deepcopy(PAYLOAD)
    bad["candidate"]["id_card"] = "110101199003071234"
    bad["evaluation"]["result"] = "maybe"
    del bad["job"]["code"]
    record, problems = spec.map(bad)
    assert record is None
    found = {(p.field, p.rule): p.value for p in problems}
    assert found[("candidate.national_id", "ID_CHECKSUM")] == "110101********1234"
    assert ("status", "ENUM") in found and ("position_code", "NOT_NULL") in found


@pytest.mark.parametrize("raw,scale,expected", [
    (85.5, 100, 85.5), ("85.5", 100, 85.5), ("4/5", None, 80.0), ("85%", None, 85.0), (4, 5, 80.0), (7.5, 10, 75.0),
])
def test_score_normalisation(raw, scale, expected):
    assert normalise_score(raw, scale)[0] == expected


@pytest.mark.parametrize("raw,scale,rule", [(130, 100, "RANGE"), (-1, 100, "RANGE"), ("abc", 100, "NUMBER"), (5, 0, "SCALE")])
def test_score_errors(raw, scale, rule):
    with pytest.raises(FieldError) as err:
        normalise_score(raw, scale)
    assert err.value.rule == rule


def test_a_broken_mapping_is_refused_naming_file_and_key(tmp_path):
    text = open(REPO_MAPPING, encoding="utf-8").read()
    cases = {
        "type: national_id": ("type: nationalid", "candidate.national_id.type"),
        "version: 1.0.0": ("version: one", "version"),
        "  status:\n": ("  statu:\n", "result"),
    }
    for old, (new, key) in cases.items():
        f = tmp_path / "m.yaml"
        f.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            MappingSpec.load(f)
        assert str(f) in str(err.value) and err.value.key.startswith(key), (old, str(err.value))


def test_a_candidate_under_16_is_refused_with_reason_minor(spec):
    from datetime import date

    from hiresync.privacy import identifiers

    today = date.today()
    first17 = f"110105{today.year - 15}0101002"  # fifteen this year
    minor = copy.deepcopy(PAYLOAD)
    minor["candidate"]["id_card"] = first17 + identifiers.id_check_char(first17)
    record, problems = spec.map(minor)
    assert record is None
    assert [(p.field, p.rule) for p in problems] == [("candidate.national_id", "MINOR")]
    assert problems[0].value.startswith("110105********")  # masked in the reason


def test_age_is_counted_in_whole_years():
    from datetime import date

    from hiresync.privacy.identifiers import age_on

    assert age_on("11010519491231002X", date(2026, 12, 30)) == 76
    assert age_on("11010519491231002X", date(2026, 12, 31)) == 77
