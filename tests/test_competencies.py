"""The group's competency model: every vendor dimension maps onto competencies.yaml through its
mapping's `competencies:` rules (by code or by name); one no rule maps is kept under the vendor's
code and flagged by `connector check` and `status`."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.errors import ConfigError
from hiresync.mapping.competency import CompetencyModel, competency_key, load_model, unmapped
from hiresync.mapping.spec import MappingSpec
from simulators.dataset import DIMENSIONS
from simulators.zhiping import ZhiPingSimulator
from tests.helpers import REPO, connect

runner = CliRunner()


def _without_rule(tmp_path, vendor: str, rule: str):
    text = (REPO / f"mappings/{vendor}.yaml").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith(f"  {rule}:")]
    (tmp_path / "m.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "m.yaml"


def test_the_model_has_a_chinese_name_and_description_for_each_code():
    model = CompetencyModel.load(REPO / "competencies.yaml")
    assert model.name_of("communication") == "沟通能力" and model.competencies["hands_on"].description
    assert model.name_of("zhiping:odd") == "zhiping:odd"  # an unmapped vendor code shows as itself


@pytest.mark.parametrize("vendor", ["aiview", "kuaipin", "zhiping"])
def test_every_dimension_of_every_vendor_maps_onto_the_model(vendor):
    model = CompetencyModel.load(REPO / "competencies.yaml")
    mapping = MappingSpec.load(REPO / f"mappings/{vendor}.yaml")
    model.check_mapping(mapping)
    pairs = [(code, name) for code, (name, _) in DIMENSIONS.items()]
    assert unmapped(mapping, pairs) == []
    # ZhiPing's rules are on its Chinese names, the others' on codes: the same competency either way.
    assert competency_key(mapping, vendor, "communication", "沟通表达") == "communication"
    assert competency_key(mapping, vendor, "resilience", "抗压能力") == "stress_tolerance"


def test_an_unmapped_dimension_keeps_the_vendor_code():
    mapping = MappingSpec.load(REPO / "mappings/aiview.yaml")
    assert competency_key(mapping, "aiview", "creativity", "创造力") == "aiview:creativity"
    assert unmapped(mapping, [("creativity", "创造力"), ("logic", "逻辑思维")]) == ["creativity"]


def test_a_rule_pointing_at_no_competency_is_a_config_error(tmp_path):
    text = (REPO / "mappings/aiview.yaml").read_text(encoding="utf-8").replace(
        "logic: logical_thinking", "logic: logik")
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="competencies.logic: 'logik' is not a competency code"):
        CompetencyModel.load(REPO / "competencies.yaml").check_mapping(MappingSpec.load(tmp_path / "m.yaml"))


def test_a_model_with_a_code_twice_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"competencies": [{"code": "a", "name": "甲"},
                                                                      {"code": "a", "name": "乙"}]},
                                                    allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"competencies\[1\].code"):
        CompetencyModel.load(tmp_path / "c.yaml")


def test_connector_check_flags_a_dimension_no_rule_maps(sqlite_settings, tmp_path, monkeypatch):
    mapping = _without_rule(tmp_path, "zhiping", "沟通表达")
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": {"zhiping": {
        "profile": "connectors/profiles/zhiping.yaml", "mapping": str(mapping)}}}), encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(tmp_path / "sources.yaml"))
    with ZhiPingSimulator(count=30, seed=29) as zp:
        connect(monkeypatch, zp, "hiresync_zhiping")
        result = runner.invoke(app, ["connector", "check", "zhiping", "--json"])
    doc = json.loads(result.output)
    check = next(c for c in doc["checks"] if c["name"] == "dimension competencies")
    assert check["status"] == "warn" and "communication" in check["detail"]
    assert load_model(sqlite_settings).name_of("communication") == "沟通能力"


def test_status_flags_dimensions_in_the_hub_that_map_to_no_competency(sqlite_settings, aiview, tmp_path, monkeypatch):
    assert runner.invoke(app, ["sync", "aiview"]).exit_code == 0
    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert doc["sources"]["aiview"]["unmapped_dimensions"] == []

    mapping = _without_rule(tmp_path, "aiview", "teamwork")
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": {"aiview": {
        "profile": "connectors/profiles/aiview.yaml", "mapping": str(mapping)}}}), encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(tmp_path / "sources.yaml"))
    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert doc["sources"]["aiview"]["unmapped_dimensions"] == ["teamwork"]
    assert "competency:  1 dimension codes map to no competency (kept under the vendor's code): teamwork" in \
        runner.invoke(app, ["status"]).output
