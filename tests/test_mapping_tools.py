"""`hiresync mapping test` and `hiresync mapping diff`: what an integrator checks before enabling a mapping."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.pipeline.runner import run_source
from simulators.aiview import AIViewSimulator
from tests.helpers import REPO, leaks, personal_values

runner = CliRunner()
MAPPING = str(REPO / "mappings/aiview.yaml")


def payloads(n: int = 6, **kw) -> list[dict]:
    return AIViewSimulator(count=n, seed=31, rescore_rate=0, **kw).records()


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_mapping_test_prints_masked_records_and_field_errors_and_fails(tmp_path):
    records = payloads()
    bad = records[2]
    bad["candidate"]["mobile"] = "12345"
    bad["evaluation"]["result"] = "maybe"
    path = tmp_path / "batch.ndjson"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")

    result = runner.invoke(app, ["mapping", "test", MAPPING, str(path)])

    assert result.exit_code == 1
    out = lines(result.output)
    assert [o["record"] for o in out] == [1, 2, 3, 4, 5, 6]
    assert {(e["field"], e["rule"]) for e in out[2]["errors"]} == {("candidate.mobile", "MOBILE_FORMAT"),
                                                                   ("status", "ENUM")}
    good = out[0]["canonical"]
    assert good["mapping_version"] == "1.0.0" and good["vendor_result_id"] == records[0]["result_id"]
    assert good["candidate"]["national_id"].count("*") == 8 and "****" in good["candidate"]["mobile"]
    assert good["result"]["video_url"].endswith("/***") and 0 <= good["result"]["overall_score"] <= 100
    assert "6 records: 5 mapped, 1 with errors" in result.output
    assert leaks(result.output, personal_values(records)) == []


def test_mapping_test_reads_a_json_list_and_passes_when_all_map(tmp_path):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(payloads(3, defect_rate=0), ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["mapping", "test", MAPPING, str(path)])
    assert result.exit_code == 0, result.output
    assert len(lines(result.output)) == 3 and all("canonical" in o for o in lines(result.output))


def test_a_broken_mapping_is_refused_before_any_record(tmp_path):
    spec = yaml.safe_load((REPO / "mappings/aiview.yaml").read_text(encoding="utf-8"))
    spec["result"]["overall_score"]["type"] = "scroe"
    mapping = tmp_path / "broken.yaml"
    mapping.write_text(yaml.safe_dump(spec), encoding="utf-8")
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(payloads(2)), encoding="utf-8")

    result = runner.invoke(app, ["mapping", "test", str(mapping), str(path)])
    assert result.exit_code == 1
    assert f"{mapping}: result.overall_score.type:" in result.output and "is not one of" in result.output
    assert "scroe" not in result.output  # the rule, never the value (it could be a pasted secret)
    assert lines(result.output) == []


def test_a_broken_payload_file_names_the_line(tmp_path):
    path = tmp_path / "batch.ndjson"
    path.write_text(json.dumps(payloads(1)[0]) + "\n{not json\n", encoding="utf-8")
    result = runner.invoke(app, ["mapping", "test", MAPPING, str(path)])
    assert result.exit_code == 1 and f"{path}: line 2: not valid JSON" in result.output


def new_version(tmp_path) -> str:
    spec = yaml.safe_load((REPO / "mappings/aiview.yaml").read_text(encoding="utf-8"))
    spec["version"] = "1.1.0"
    spec["result"]["status"]["values"]["pending"] = "incomplete"
    spec["result"]["overall_score"]["scale"] = 200  # the vendor moved to 0-200: out-of-range ones now map
    path = tmp_path / "aiview-1.1.0.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_diff_against_the_stored_version_shows_changed_records_and_fields(sqlite_settings, aiview, tmp_path):
    run_source("aiview", sqlite_settings)
    newest = {r["result_id"]: r for r in aiview.records()}  # feed order: the last version wins
    pending = {k for k, r in newest.items() if r["evaluation"]["result"] == "pending" and k not in aiview.defects}
    ranged = {k for k, v in aiview.defects.items() if v == "score_out_of_range"}

    result = runner.invoke(app, ["mapping", "diff", new_version(tmp_path), "--against", "1.0.0", "--json"])

    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["old_version"], doc["new_version"], doc["source"]) == ("1.0.0", "1.1.0", "aiview")
    assert doc["compared"] == len(newest)
    changes = {c["key"]: c for c in doc["changes"]}
    # Every mapped record's score halves; the pending ones also change status; RANGE defects now map.
    assert {k for k, c in changes.items() if c["change"] == "now_maps"} == ranged
    fields = {k: {f["field"] for f in c["fields"]} for k, c in changes.items() if c["change"] == "fields"}
    assert {k for k, f in fields.items() if "status" in f} == pending
    assert all({"overall_score", "score_scale"} <= f for f in fields.values())
    some = next(iter(pending))
    assert {"field": "status", "old": "pending_review", "new": "incomplete"} in changes[some]["fields"]
    assert doc["changed_by_field"]["status"] == len(pending)

    text = runner.invoke(app, ["mapping", "diff", new_version(tmp_path), "--against", MAPPING]).output
    assert f"aiview 1.0.0 -> 1.1.0 on aiview: {doc['changed']} of {doc['compared']}" in text
    assert "status 'pending_review' -> 'incomplete'" in text
    assert leaks(result.output + text, personal_values(aiview.records())) == []


def test_diff_against_an_unknown_version_says_which_exist(sqlite_settings, aiview, tmp_path):
    run_source("aiview", sqlite_settings)
    result = runner.invoke(app, ["mapping", "diff", new_version(tmp_path), "--against", "0.9.0"])
    assert result.exit_code == 1
    assert "no version '0.9.0' of mapping 'aiview'" in result.output and "1.0.0" in result.output
