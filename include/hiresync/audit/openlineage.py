"""HireSync's own OpenLineage event for each published run: column lineage and data quality.

Airflow's provider reports each task with the inputs and outputs declared on it, but cannot attach
facets only known at run time to a @task's events: which canonical field came from which vendor
path (from the mapping spec) and what Great Expectations found (runs.validation_summary). One
COMPLETE event per run carries them, under the job "hiresync_sync_<source>.records", on the same
transport as the provider (AIRFLOW__OPENLINEAGE__TRANSPORT), with the same dataset names
(hiresync.audit.datasets), so Marquez joins both into one graph.

Events hold names, rules and counts, never a value. Lineage is best effort by design (the audit
trail is the hub's record_lineage): a transport that is down is logged and never fails a sync.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from hiresync.hub.models import Run
from hiresync.audit.datasets import DatasetName, hub, target_tables, vendor_endpoint
from hiresync.audit.rules import FieldRule, MappingRules
from hiresync.config.settings import Settings

if TYPE_CHECKING:
    from hiresync.pipeline.context import RunContext

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/hiresync/hiresync/tree/main/include/hiresync/audit"
DEFAULT_NAMESPACE = "hiresync"  # airflow.cfg [openlineage] namespace: the jobs group with the DAG's

# Where each canonical field lands in the hub. Personal data lands encrypted, blind-indexed and
# masked: its column lineage is flagged as masking.
_CANDIDATE_COLUMNS = {
    "full_name": ("full_name_enc", "full_name_masked"),
    "national_id": ("national_id_enc", "national_id_bidx", "national_id_masked"),
    "mobile": ("mobile_enc", "mobile_bidx", "mobile_masked"),
    "email": ("email_enc", "email_bidx", "email_masked"),
}


def hub_columns(field: str) -> tuple[str, tuple[str, ...]]:
    """canonical field -> (hub table, its columns there)."""
    if field == "candidate.vendor_candidate_id":
        return "candidate_vendor_ids", ("vendor_candidate_id",)
    if field.startswith("candidate."):
        return "candidates", _CANDIDATE_COLUMNS[field.removeprefix("candidate.")]
    if field.startswith("dimensions."):
        name = field.removeprefix("dimensions.")
        return "dimension_scores", ("score", "raw_score", "scale") if name == "score" else (name,)
    if field == "overall_score":
        return "interview_results", ("overall_score", "raw_score", "score_scale")
    if field == "video_url":
        return "interview_results", ("video_url_enc",)
    return "interview_results", (field,)


def emit_run_lineage(ctx: RunContext) -> bool:
    """Emit the run's event (from the publish step); True if the transport took it. Never raises."""
    try:
        client = client_for(ctx.settings)
        if client is None:
            return False
        with ctx.transaction() as s:  # read, build, close: no database lock is held while sending
            run = s.get(Run, ctx.run_id)
            event = run_event(ctx.settings, ctx.source.name, Path(ctx.source.mapping), Path(ctx.source.profile),
                              list(ctx.source.targets), run)
        client.emit(event)
        return True
    except Exception as exc:  # noqa: BLE001 - lineage must never fail a sync; the type is enough to act on
        log.warning("OpenLineage event for run %s not emitted (%s); the hub's record_lineage has the audit trail",
                    ctx.run_id, type(exc).__name__)
        return False


def client_for(settings: Settings):
    """The provider's transport configuration, else openlineage-python's own (OPENLINEAGE_URL or
    OPENLINEAGE_CONFIG), else a file under var/lineage. None when lineage is disabled."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport import get_default_factory

    if os.environ.get("AIRFLOW__OPENLINEAGE__DISABLED", "").lower() in ("1", "true"):
        return None
    if text := os.environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT"):
        config = json.loads(text)
    elif os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return OpenLineageClient()
    else:
        settings.lineage_file.parent.mkdir(parents=True, exist_ok=True)
        config = {"type": "file", "log_file_path": str(settings.lineage_file), "append": True}
    return OpenLineageClient(transport=get_default_factory().create(config))


def run_event(settings: Settings, source: str, mapping_file: Path, profile_file: Path, targets: list[str], run: Run):
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run as OLRun, RunEvent, RunState
    from openlineage.client.facet_v2 import (
        documentation_job, job_type_job, output_statistics_output_dataset, schema_dataset, set_producer,
    )
    from openlineage.client.uuid import generate_static_uuid

    set_producer(PRODUCER)
    rules = MappingRules.from_yaml(mapping_file.read_text(encoding="utf-8"))
    vendor = vendor_endpoint(profile_file)
    summary = run.validation_summary or {}

    def stats(rows: int):
        return {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)}

    vendor_fields = sorted({p for r in rules.fields.values() for p in _vendor_inputs(rules, r)} | {rules.key_path})
    inputs = [InputDataset(
        namespace=vendor.namespace, name=vendor.name,
        facets={"schema": schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=p) for p in vendor_fields])},
        inputFacets=quality_facets(summary, rules))]

    by_table: dict[str, dict] = {}
    for rule in rules.fields.values():
        table, columns = hub_columns(rule.field)
        for column in columns:
            by_table.setdefault(table, {})[column] = _column_lineage(vendor, rules, rule)
    by_table["interview_results"]["vendor_result_id"] = _column_lineage(
        vendor, rules, FieldRule(field="vendor_result_id", path=rules.key_path))
    counts = {"interview_results": run.inserted + run.updated, "quarantine": run.quarantined,
              "record_lineage": run.pulled, "raw_payloads": None}
    outputs = []
    for table in ("candidates", "candidate_vendor_ids", "interview_results", "dimension_scores", "quarantine",
                  "record_lineage", "raw_payloads"):
        d = hub(settings, table)
        facets = {"columnLineage": column_lineage_facet(by_table[table])} if table in by_table else {}
        outputs.append(OutputDataset(namespace=d.namespace, name=d.name, facets=facets,
                                     outputFacets=stats(counts[table]) if counts.get(table) is not None else {}))
    for target in targets:
        for d in target_tables(settings, target):
            outputs.append(OutputDataset(namespace=d.namespace, name=d.name,
                                         outputFacets=stats(run.delivered) if d.name.endswith("interview_results") else {}))

    started = run.started_at or datetime.now(timezone.utc)
    return RunEvent(
        eventType=RunState.COMPLETE if run.status == "success" else RunState.FAIL,
        eventTime=(run.finished_at or datetime.now(timezone.utc)).isoformat(),
        run=OLRun(runId=str(generate_static_uuid(started, run.id.encode()))),
        job=Job(namespace=os.environ.get("AIRFLOW__OPENLINEAGE__NAMESPACE", DEFAULT_NAMESPACE),
                name=f"hiresync_sync_{source}.records",
                facets={"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="HIRESYNC",
                                                                jobType="TASK"),
                        "documentation": documentation_job.DocumentationJobFacet(
                            description=f"Record-level lineage of HireSync run {run.id}: vendor fields to hub columns "
                                        f"(mapping {rules.mapping} {rules.version}), Great Expectations results.")}),
        inputs=inputs, outputs=outputs, producer=PRODUCER,
    )


def quality_facets(summary: dict, rules: MappingRules) -> dict:
    """Great Expectations' outcome (runs.validation_summary: counts per expectation) as facets."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
    from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm

    expectations = summary.get("expectations") or []
    if not expectations:
        return {}

    def column(field: str) -> str:
        rule = rules.fields.get(field)
        return rules.vendor_path(rule) if rule and rule.path else rules.key_path if field == "record.key" else field

    assertions = [dqa.Assertion(
        assertion=e["rule"].lower(), success=bool(e["success"]), column=column(e["field"]), severity="error",
        name=e.get("expectation"), expected="0", actual=str(e.get("unexpected_count") or 0),
        description=f"{e['field']}: {e['rule']} (failing rows are quarantined with this reason)")
        for e in expectations]
    metrics: dict[str, dqm.ColumnMetrics] = {}
    for e in expectations:
        if e.get("missing_count") is not None and e.get("element_count") is not None:
            metrics[column(e["field"])] = dqm.ColumnMetrics(nullCount=int(e["missing_count"]), count=e["element_count"])
    return {"dataQualityAssertions": dqa.DataQualityAssertionsDatasetFacet(assertions=assertions),
            "dataQualityMetrics": dqm.DataQualityMetricsInputDatasetFacet(columnMetrics=metrics,
                                                                          rowCount=summary.get("rows"))}


def column_lineage_facet(fields: dict):
    from openlineage.client.facet_v2 import column_lineage_dataset as cl

    return cl.ColumnLineageDatasetFacet(fields=fields)


def _column_lineage(vendor: DatasetName, rules: MappingRules, rule: FieldRule):
    from openlineage.client.facet_v2 import column_lineage_dataset as cl

    key = rule.field == "vendor_result_id"
    transformation = cl.Transformation(type="DIRECT", subtype="IDENTITY" if key else "TRANSFORMATION",
                                       description="record key" if key else rule.describe(), masking=rule.pii)
    return cl.Fields(inputFields=[cl.InputField(namespace=vendor.namespace, name=vendor.name, field=path,
                                                transformations=[transformation])
                                  for path in _vendor_inputs(rules, rule)])


def _vendor_inputs(rules: MappingRules, rule: FieldRule) -> list[str]:
    """The vendor paths a canonical field is computed from (a score's scale path included)."""
    if rule.path is None:
        return []
    paths = [rules.vendor_path(rule)]
    if isinstance(rule.scale, str):
        paths.append(rules.vendor_path(FieldRule(field=rule.field, path=rule.scale)))
    return paths
