"""OpenLineage names of what HireSync reads and writes: the vendor endpoint, staging, hub and targets.

One naming for both event sources, so that Marquez joins them into one graph: the inlets and
outlets of the Airflow tasks (the DAG file imports this module at parse time: standard library,
PyYAML and SQLAlchemy's URL parser only, all loaded by Airflow already) and HireSync's own
events (hiresync.audit.openlineage). SQL tables follow OpenLineage's naming spec
(postgres://host:port + db.schema.table, mysql://host:port + db.table); SQLite has no entry
there: the file is the namespace and "main" (SQLite's name for it) the database. The vendor
endpoint is named by its Airflow Connection id and path: the host lives in the Connection, which
must not be read at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from hiresync.config.settings import Settings

HUB_LOAD_TABLES = ("raw_payloads", "quarantine", "candidates", "candidate_vendor_ids", "interview_results",
                   "dimension_scores", "outbox", "record_lineage", "mapping_versions", "runs", "watermarks")
EHR_TABLES = ("ehr_candidates", "ehr_interview_results", "ehr_dimension_scores")
STEPS = ("extract", "validate", "map", "load", "deliver", "publish")


@dataclass(frozen=True)
class DatasetName:
    namespace: str
    name: str
    # How Airflow's provider must be told, so that it reports exactly (namespace, name):
    # a Table (namespace = cluster, name = "database.table") or a File URL.
    database: str | None = None
    table: str | None = None
    url: str | None = None

    def airflow_entity(self):
        """An inlet/outlet object Airflow's OpenLineage provider turns into this dataset."""
        from airflow.providers.common.compat.lineage.entities import File, Table

        if self.table is not None:
            return Table(cluster=self.namespace, database=self.database, name=self.table)
        return File(url=self.url)


def sql_table(url: str, table: str) -> DatasetName:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        path = str(Path(u.database or ":memory:").resolve()) if u.database not in (None, "", ":memory:") else "memory"
        return _table(f"sqlite://{path}", "main", table)
    if backend == "postgresql":
        return _table(f"postgres://{u.host or 'localhost'}:{u.port or 5432}", f"{u.database}.public", table)
    if backend in ("mysql", "mariadb"):
        return _table(f"mysql://{u.host or 'localhost'}:{u.port or 3306}", str(u.database), table)
    return _table(f"{backend}://{u.host or 'localhost'}{f':{u.port}' if u.port else ''}", str(u.database), table)


def _table(namespace: str, database: str, table: str) -> DatasetName:
    return DatasetName(namespace, f"{database}.{table}", database=database, table=table)


def vendor_endpoint(profile_file: Path) -> DatasetName:
    doc = yaml.safe_load(profile_file.read_text(encoding="utf-8")) or {}
    conn = doc.get("connection") or doc.get("source") or profile_file.stem
    path = "/" + str((doc.get("stream") or {}).get("path", "")).lstrip("/")
    # The provider names an unknown-scheme URL (namespace = scheme, name = netloc + path).
    return DatasetName("airflow-connection", f"{conn}{path}", url=f"airflow-connection://{conn}{path}")


def staging(settings: Settings, source: str, part: str) -> DatasetName:
    # Run-scoped files in reality; one dataset per source and part keeps the graph readable.
    path = (settings.staging_dir / source / part).resolve()
    return DatasetName("file://", str(path).lstrip("/"), url=f"file://{path}")


def hub(settings: Settings, table: str) -> DatasetName:
    return sql_table(settings.hub_url, table)


def target_tables(settings: Settings, target: str) -> list[DatasetName]:
    if target == "ehr":
        return [sql_table(settings.ehr_url, t) for t in EHR_TABLES]
    return [DatasetName(f"hiresync-target://{target}", "interview_results", url=f"hiresync-target://{target}/interview_results")]


def task_datasets(settings: Settings, source: str, profile_file: Path, targets: list[str]) -> dict[str, tuple[list[DatasetName], list[DatasetName]]]:
    """step -> (inputs, outputs) of one source's sync DAG."""
    raw, checked, mapped = (staging(settings, source, p) for p in ("raw", "validation", "mapped"))
    delivered = [d for t in targets for d in target_tables(settings, t)]
    return {
        "extract": ([vendor_endpoint(profile_file)], [raw, hub(settings, "runs")]),
        "validate": ([raw], [checked]),
        "map": ([raw], [mapped]),
        "load": ([raw, checked, mapped], [hub(settings, t) for t in HUB_LOAD_TABLES]),
        "deliver": ([hub(settings, "outbox")], delivered + [hub(settings, "outbox")]),
        "publish": ([hub(settings, "runs"), hub(settings, "outbox")], [hub(settings, "runs")]),
    }


def airflow_lineage(source: str, cfg: dict) -> dict[str, dict[str, list]]:
    """step -> {"inlets": [...], "outlets": [...]} for the @task decorators of the sync DAG."""
    settings = Settings.from_env()
    io = task_datasets(settings, source, settings.resolve(cfg["profile"]), list(cfg.get("targets") or ["ehr"]))
    return {step: {"inlets": [d.airflow_entity() for d in ins], "outlets": [d.airflow_entity() for d in outs]}
            for step, (ins, outs) in io.items()}
