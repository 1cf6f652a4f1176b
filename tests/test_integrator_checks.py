"""An integrator's mistakes are caught before the first sync (issue 11, finding 9): `connector check`
fails on a value-map typo that fails a large share of records and warns (fails with --strict) on an
optional path no record has; sources.yaml is checked (cron, files) when loaded, also by the DAG
file; `mapping test` applies the sync's canonical checks; the raw suite and the mapper give one
reason code per defect."""

from __future__ import annotations

import copy
import importlib.util
import json
import math

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.config.sources import load_sources
from hiresync.contract import raw_suite
from hiresync.contract.gx import validate_frame
from hiresync.errors import ConfigError
from hiresync.mapping.spec import MappingSpec
from simulators.zhiping import ZhiPingSimulator
from tests.helpers import REPO, connect, leaks
from tests.test_connector_check import zhiping_values
from tests.test_mapping import PAYLOAD

runner = CliRunner()


def _sources(tmp_path, monkeypatch, **entries) -> None:
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": entries}), encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(tmp_path / "sources.yaml"))


def _zhiping_mapping(tmp_path, *replacements) -> str:
    text = (REPO / "mappings/zhiping.yaml").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    return str(tmp_path / "m.yaml")


def _check(monkeypatch, *args):
    with ZhiPingSimulator(count=100, seed=29, defect_rate=0) as zp:
        connect(monkeypatch, zp, "hiresync_zhiping")
        return runner.invoke(app, ["connector", "check", "zhiping", *args]), zp


# -- connector check -----------------------------------------------------------------------------
def test_a_value_map_typo_failing_a_large_share_fails_the_check(sqlite_settings, tmp_path, monkeypatch):
    mapping = _zhiping_mapping(tmp_path, ("values: {1: passed, 2: failed", "values: {11: passed, 2: failed"))
    _sources(tmp_path, monkeypatch, zhiping={"profile": "connectors/profiles/zhiping.yaml", "mapping": mapping})
    result, zp = _check(monkeypatch)
    assert result.exit_code == 1, result.output
    assert "FAIL  records map" in result.output
    assert "status ENUM fails on" in result.output and "more than 20%" in result.output
    assert leaks(result.output, zhiping_values(zp)) == []


def test_a_few_bad_records_under_the_threshold_still_pass(sqlite_settings, tmp_path, monkeypatch):
    # pending (code 3) is a minority: below a 50% threshold the check passes and lists the problem
    mapping = _zhiping_mapping(tmp_path, ("3: pending_review}\n  video", "33: pending_review}\n  video"))
    _sources(tmp_path, monkeypatch, zhiping={"profile": "connectors/profiles/zhiping.yaml", "mapping": mapping,
                                             "drift_threshold": 0.5})
    result, _ = _check(monkeypatch)
    assert result.exit_code == 0, result.output
    assert "PASS  records map" in result.output and "status ENUM" in result.output


def test_an_optional_path_absent_from_every_record_warns_and_fails_with_strict(sqlite_settings, tmp_path, monkeypatch):
    mapping = _zhiping_mapping(tmp_path, ("path: candidate.email", "path: candidate.e_mail"),
                               ("  path: dimensions\n", "  path: dimension\n"))
    _sources(tmp_path, monkeypatch, zhiping={"profile": "connectors/profiles/zhiping.yaml", "mapping": mapping})
    result, _ = _check(monkeypatch)
    assert result.exit_code == 0, result.output
    assert "WARN  optional paths" in result.output
    assert "candidate.email (candidate.e_mail)" in result.output and "dimensions (dimension)" in result.output
    assert "1 warned" in result.output
    strict, _ = _check(monkeypatch, "--strict", "--json")
    assert strict.exit_code == 1
    doc = json.loads(strict.output)
    assert not doc["passed"] and {c["name"]: c["status"] for c in doc["checks"]}["optional paths"] == "warn"


# -- sources.yaml --------------------------------------------------------------------------------
@pytest.mark.parametrize("change,key,problem", [
    ({"schedule": "61 * * * *"}, "sources.zhiping.schedule", "not a cron expression"),
    ({"schedule": "every hour"}, "sources.zhiping.schedule", "not a cron expression"),
    ({"profile": "connectors/profiles/zhipin.yaml"}, "sources.zhiping.profile", "no such file"),
    ({"mapping": "mappings/zhipng.yaml"}, "sources.zhiping.mapping", "no such file"),
])
def test_sources_yaml_is_checked_when_loaded(sqlite_settings, tmp_path, monkeypatch, change, key, problem):
    entry = {"profile": "connectors/profiles/zhiping.yaml", "mapping": "mappings/zhiping.yaml",
             "schedule": "15 * * * *"} | change
    _sources(tmp_path, monkeypatch, zhiping=entry)
    from hiresync.config.settings import Settings

    with pytest.raises(ConfigError) as err:
        load_sources(Settings.from_env())
    assert str(err.value).startswith(f"{tmp_path / 'sources.yaml'}: {key}: {problem}")
    result = runner.invoke(app, ["connector", "check", "zhiping"])
    assert result.exit_code == 1 and "FAIL  configuration" in result.output and key in result.output


@pytest.mark.parametrize("schedule", ["@daily", "@once", None, "*/15 8-20 * * 1-5"])
def test_valid_schedules_load(sqlite_settings, tmp_path, monkeypatch, schedule):
    _sources(tmp_path, monkeypatch, zhiping={"profile": "connectors/profiles/zhiping.yaml",
                                             "mapping": "mappings/zhiping.yaml", "schedule": schedule})
    from hiresync.config.settings import Settings

    assert load_sources(Settings.from_env())["zhiping"].schedule == schedule


def test_the_dag_file_import_fails_with_one_clear_message(tmp_path, monkeypatch):
    _sources(tmp_path, monkeypatch, zhiping={"profile": "connectors/profiles/zhiping.yaml",
                                             "mapping": "mappings/zhiping.yaml", "schedule": "0 25 * * *"})
    spec = importlib.util.spec_from_file_location("hiresync_sync_badcron", REPO / "dags/hiresync_sync.py")
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ConfigError) as err:
        spec.loader.exec_module(module)
    assert "sources.zhiping.schedule: not a cron expression" in str(err.value)


# -- mapping test ---------------------------------------------------------------------------------
def test_mapping_test_applies_the_canonical_checks_of_the_sync(tmp_path):
    future = copy.deepcopy(PAYLOAD) | {"result_id": "AV-F"}
    future["interview"] = dict(future["interview"], started_at="2099-01-01T09:00:00+08:00",
                               finished_at="2099-01-01T09:30:00+08:00")
    backwards = copy.deepcopy(PAYLOAD) | {"result_id": "AV-O"}
    backwards["interview"] = dict(backwards["interview"], finished_at="2026-11-03T08:00:00+08:00")
    path = tmp_path / "p.ndjson"
    path.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in (PAYLOAD, future, backwards, [1, 2])),
                    encoding="utf-8")
    result = runner.invoke(app, ["mapping", "test", "mappings/aiview.yaml", str(path)])
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert "canonical" in out[0]
    assert [(e["field"], e["rule"]) for e in out[1]["errors"]] == [("completed_at", "FUTURE")]
    assert [(e["field"], e["rule"]) for e in out[2]["errors"]] == [("completed_at", "ORDER")]
    assert [(e["field"], e["rule"]) for e in out[3]["errors"]] == [("record", "NOT_AN_OBJECT")]
    assert "4 records: 1 mapped, 3 with errors" in result.output
    assert "11010519491231002" not in result.output


# -- one reason code per defect ---------------------------------------------------------------------
def _raw(spec, payloads):
    frame = pd.DataFrame(raw_suite.frame_columns(payloads, spec))
    outcome = validate_frame(frame, raw_suite.ROW, raw_suite.checks_for(spec), suite_name="t.raw")
    found: dict[int, set] = {}
    for f in outcome.failures:
        found.setdefault(int(f.key), set()).add((f.field, f.rule))
    return found


def _with(path: str, value):
    payload = copy.deepcopy(PAYLOAD)
    node = payload
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return payload


DEFECTS = {
    "bad checksum": (_with("candidate.id_card", "110105194912310020"), {("candidate.national_id", "ID_CHECKSUM")}),
    "bad shape": (_with("candidate.id_card", "11010519491231"), {("candidate.national_id", "ID_FORMAT")}),
    "bad birth date": (_with("candidate.id_card", "110101199002301232"), {("candidate.national_id", "ID_BIRTH_DATE")}),
    "NaN score": (_with("evaluation.total_score", math.nan), {("overall_score", "NAN")}),
    "NaN name": (_with("candidate.name", math.nan), {("candidate.full_name", "NAN")}),
    "missing name": (_with("candidate.name", None), {("candidate.full_name", "NOT_NULL")}),
    "bad mobile": (_with("candidate.mobile", "12345"), {("candidate.mobile", "MOBILE_FORMAT")}),
    "bad time": (_with("updated_at", "yesterday"), {("source_updated_at", "DATETIME")}),
    "not an object": (["a", "list"], {("record", "NOT_AN_OBJECT")}),
    "text, not an object": ("AV-1", {("record", "NOT_AN_OBJECT")}),
}


def test_the_raw_suite_and_the_mapper_give_one_reason_code_per_defect():
    spec = MappingSpec.load("mappings/aiview.yaml")
    names = list(DEFECTS)
    raw = _raw(spec, [PAYLOAD] + [DEFECTS[n][0] for n in names])
    assert 0 not in raw   # the good payload passes
    for i, name in enumerate(names, 1):
        payload, expected = DEFECTS[name]
        mapper = {(p.field, p.rule) for p in spec.map(payload)[1]}
        assert mapper == expected, name
        assert raw.get(i) == expected, name
