"""OpenLineage: every event of an end-to-end Airflow run validates against the shared specs
(core + each facet used), names the vendor endpoint, hub tables and targets, carries column
lineage from the mapping and GX data quality, leaks no personal data; a dead transport never
fails a sync."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import REPO, leaks, personal_values

SPECS = REPO / "specs" / "openlineage"  # a copy of ../shared/specs/openlineage, kept with the code


@pytest.fixture(scope="module")
def validators():
    """Core RunEvent validator + facet key -> validator, all $refs resolved from the local files."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    docs = [json.loads(p.read_text()) for p in [SPECS / "OpenLineage.json", *sorted((SPECS / "facets").glob("*.json"))]]
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)
    core = docs[0]
    run_event = Draft202012Validator({"$ref": f"{core['$id']}#/$defs/RunEvent"}, registry=registry)
    base_facet = Draft202012Validator({"$ref": f"{core['$id']}#/$defs/BaseFacet"}, registry=registry)
    facets = {key: Draft202012Validator({"$ref": f"{d['$id']}#/properties/{key}"}, registry=registry)
              for d in docs[1:] for key in d.get("properties", {})}
    return run_event, facets, base_facet


def check_event(event: dict, validators) -> set[str]:
    """Validate one event; returns the facet keys that had a spec schema."""
    run_event, facets, base_facet = validators
    errors = [e.message for e in run_event.iter_errors(event)]
    checked = set()
    facet_maps = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for ds in event.get("inputs", []) + event.get("outputs", []):
        facet_maps += [ds.get("facets", {}), ds.get("inputFacets", {}), ds.get("outputFacets", {})]
    for fmap in facet_maps:
        for key, facet in fmap.items():
            # Facets without a spec in specs/openlineage (Airflow's own, e.g. "airflow") are
            # checked against the core BaseFacet: _producer and _schemaURL.
            validator = facets.get(key, base_facet)
            errors += [f"{key}: {e.message}" for e in validator.iter_errors(facet)]
            if key in facets:
                checked.add(key)
    assert errors == [], f"{event['eventType']} {event['job']['name']}: {errors[:5]}"
    return checked


def read_events(path: Path, offset: int) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        f.seek(offset)
        return [json.loads(line) for line in f if line.strip()]


def test_every_event_of_an_airflow_run_is_valid_names_its_datasets_and_leaks_nothing(
        airflow_db, sqlite_settings, aiview, validators):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    from hiresync.audit.datasets import hub, sql_table, vendor_endpoint

    lineage_file = Path(json.loads(os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"])["log_file_path"])
    offset = lineage_file.stat().st_size if lineage_file.exists() else 0
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["hiresync_sync_aiview"]
    dag_run = dag.test()
    assert dag_run.state == DagRunState.SUCCESS

    text = lineage_file.read_text(encoding="utf-8")[offset:] if offset else lineage_file.read_text(encoding="utf-8")
    events = read_events(lineage_file, offset)
    assert leaks(text, personal_values(aiview.records())) == []
    ours = [e for e in events if e["job"]["name"] == "hiresync_sync_aiview.records"]
    tasks = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    assert {f"hiresync_sync_aiview.{t}" for t in ("extract", "validate", "map", "load", "deliver", "publish")} <= set(tasks)
    assert len(ours) == 1

    checked: set[str] = set()
    for event in events:
        checked |= check_event(event, validators)
    assert {"columnLineage", "dataQualityAssertions", "dataQualityMetrics", "outputStatistics", "schema"} <= checked

    def names(ds):
        return {(d["namespace"], d["name"]) for d in ds}

    vendor = vendor_endpoint(REPO / "connectors" / "profiles" / "aiview.yaml")
    results = hub(sqlite_settings, "interview_results")
    ehr = sql_table(sqlite_settings.ehr_url, "ehr_interview_results")
    assert (vendor.namespace, vendor.name) in names(tasks["hiresync_sync_aiview.extract"]["inputs"])
    assert (results.namespace, results.name) in names(tasks["hiresync_sync_aiview.load"]["outputs"])
    assert (ehr.namespace, ehr.name) in names(tasks["hiresync_sync_aiview.deliver"]["outputs"])

    # Column lineage: each canonical field <- its vendor path; personal data flagged as masked.
    event = ours[0]
    outputs = {d["name"]: d for d in event["outputs"]}
    candidates = outputs[hub(sqlite_settings, "candidates").name]["facets"]["columnLineage"]["fields"]
    nid = candidates["national_id_enc"]["inputFields"][0]
    assert (nid["namespace"], nid["name"], nid["field"]) == (vendor.namespace, vendor.name, "candidate.id_card")
    assert nid["transformations"][0]["masking"] is True
    score = outputs[results.name]["facets"]["columnLineage"]["fields"]["overall_score"]["inputFields"]
    assert {f["field"] for f in score} == {"evaluation.total_score", "evaluation.full_score"}
    assert all(f["transformations"][0]["masking"] is False for f in score)

    # Data quality: GX's outcome per expectation, as stored with the run.
    (vendor_input,) = event["inputs"]
    assertions = vendor_input["inputFacets"]["dataQualityAssertions"]["assertions"]
    failed = {(a["column"], a["assertion"]) for a in assertions if not a["success"]}
    assert ("candidate.id_card", "id_checksum") in failed or ("interview.started_at", "datetime") in failed
    assert vendor_input["inputFacets"]["dataQualityMetrics"]["rowCount"] == 300 + len(aiview.rescored)
    quarantine = outputs[hub(sqlite_settings, "quarantine").name]
    assert quarantine["outputFacets"]["outputStatistics"]["rowCount"] == len(aiview.defects)


def test_a_lineage_transport_that_is_down_does_not_fail_the_sync(sqlite_settings, aiview, monkeypatch, caplog):
    import socket

    from hiresync.pipeline.runner import run_source

    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       json.dumps({"type": "http", "url": f"http://127.0.0.1:{port}", "timeout": 1}))
    summary = run_source("aiview", sqlite_settings)
    assert summary["status"] == "success" and summary["inserted"] > 0
    assert "not emitted" in caplog.text


def test_without_configuration_events_go_to_a_file_under_var(sqlite_settings, aiview, monkeypatch, validators):
    from hiresync.pipeline.runner import run_source

    monkeypatch.delenv("AIRFLOW__OPENLINEAGE__TRANSPORT", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
    run_source("aiview", sqlite_settings)
    (event,) = read_events(sqlite_settings.lineage_file, 0)
    check_event(event, validators)
    assert event["eventType"] == "COMPLETE" and event["job"]["namespace"] == "hiresync"
