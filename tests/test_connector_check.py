"""`hiresync connector check <source>` against the simulators: a readable report, exit code 0/1."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from hiresync.cli import app
from simulators.zhiping import LIST_PATH, ZhiPingSimulator
from tests.helpers import REPO, connect, leaks, personal_values

runner = CliRunner()
CHECKS = ["configuration", "credentials", "one page reads", "records map", "optional paths", "dimension competencies", "far-future watermark",
          "two reads agree"]


def zhiping_values(sim) -> set[str]:
    return personal_values([{"candidate": {"id_card": r["candidate"]["id_no"], "mobile": r["candidate"]["phone"],
                                           "email": r["candidate"]["email"], "name": r["candidate"]["real_name"]},
                             "interview": {"video": {"url": r["video_url"]}}} for r in sim.records()])


def test_every_check_passes_against_both_reference_vendors(sqlite_settings, aiview, monkeypatch):
    with ZhiPingSimulator(count=150, seed=29) as zp:
        connect(monkeypatch, zp, "hiresync_zhiping")
        for source, sim in (("aiview", aiview), ("zhiping", zp)):
            result = runner.invoke(app, ["connector", "check", source, "--json"])
            assert result.exit_code == 0, result.output
            doc = json.loads(result.output)
            assert doc["passed"] and [c["name"] for c in doc["checks"]] == CHECKS
            assert {c["status"] for c in doc["checks"]} == {"pass"}

        text = runner.invoke(app, ["connector", "check", "zhiping"]).output
        assert "PASS  records map" in text and "100 records from GET /open/v1/interview/list" in text
        assert text.strip().endswith("result: PASS (8 passed)")
        assert leaks(text, zhiping_values(zp)) == []
    # Reads only: nothing was staged, loaded or watermarked.
    assert not sqlite_settings.staging_dir.exists()


def test_wrong_credentials_fail_the_check_with_exit_code_1_and_no_secret(sqlite_settings, monkeypatch):
    with ZhiPingSimulator(count=30, seed=29) as zp:
        connect(monkeypatch, zp, "hiresync_zhiping", password="Wr0ng-Signing-Key")
        result = runner.invoke(app, ["connector", "check", "zhiping"])
    assert result.exit_code == 1
    assert "FAIL  credentials" in result.output and "vendor code 40001" in result.output
    assert "SKIP  one page reads" in result.output and "result: FAIL" in result.output
    assert "Wr0ng-Signing-Key" not in result.output


def test_a_mapping_that_misses_on_every_record_fails_the_check(sqlite_settings, tmp_path, monkeypatch):
    mapping = (REPO / "mappings/zhiping.yaml").read_text(encoding="utf-8").replace(
        "path: candidate.id_no", "path: candidate.id_number")
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": {"zhiping": {
        "profile": "connectors/profiles/zhiping.yaml", "mapping": str(tmp_path / "m.yaml")}}}), encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(tmp_path / "sources.yaml"))
    with ZhiPingSimulator(count=30, seed=29) as zp:
        connect(monkeypatch, zp, "hiresync_zhiping")
        result = runner.invoke(app, ["connector", "check", "zhiping"])
    assert result.exit_code == 1
    assert "FAIL  records map" in result.output
    assert "0 of 30 map" in result.output and "fails on every record: candidate.national_id NOT_NULL" in result.output


def test_a_vendor_that_ignores_the_since_parameter_fails_the_far_future_check(sqlite_settings, tmp_path, monkeypatch):
    profile = yaml.safe_load((REPO / "connectors/profiles/zhiping.yaml").read_text(encoding="utf-8"))
    profile["stream"]["incremental"]["param"] = "begin_time"  # not what ZhiPing filters on
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": {"zhiping": {
        "profile": str(tmp_path / "p.yaml"), "mapping": "mappings/zhiping.yaml"}}}), encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(tmp_path / "sources.yaml"))
    with ZhiPingSimulator(count=30, seed=29) as zp:
        connect(monkeypatch, zp, "hiresync_zhiping")
        result = runner.invoke(app, ["connector", "check", "zhiping"])
        assert zp.requests[LIST_PATH] == 3  # first page, far future, first page again
    assert result.exit_code == 1
    assert "FAIL  far-future watermark" in result.output and "30 records; the vendor ignores 'begin_time'" in result.output


def test_an_unknown_source_or_broken_profile_is_one_failed_check(sqlite_settings):
    result = runner.invoke(app, ["connector", "check", "nosuch"])
    assert result.exit_code == 1
    assert "FAIL  configuration" in result.output and "sources.nosuch: no such source" in result.output


def test_non_rest_sources_are_skipped_with_a_reason(sqlite_settings):
    from hiresync.tools.connector_check import check_source, passed

    checks = check_source("dept_reinterview", sqlite_settings)
    assert [c.status for c in checks] == ["skip"] and "file_drop" in checks[0].detail
    assert passed(checks)
