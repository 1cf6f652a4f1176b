"""The EHR as a SQL target: candidate archive and interview-result tables in the EHR's database.

In production these are the EHR's own (or intermediate) tables; by default a second SQLite file.
Writes are idempotent: a result is keyed by "vendor:result id" and only a higher hub version
replaces what is there, so a redelivered or reordered batch changes nothing.

What HR reads (schema version 2): status and recommendation as Chinese labels beside the codes
(mappings/targets/ehr.yaml), interview times in the group's time zone with their UTC offset beside
the UTC columns, and one row per dimension score in `ehr_dimension_scores` with the competency of
the group's model it belongs to (the JSON column stays for tools that read it). `upgrade()` brings
tables of an older version up to date in place (new columns, new table, existing rows backfilled)
on SQLite, PostgreSQL and MariaDB; opening the target runs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column, DateTime, Integer, MetaData, Numeric, String, Table, Text, bindparam, create_engine, delete, insert,
    inspect, select, text, update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from connectors.targets.shape import Shape
from hiresync import jsonfast
from hiresync.hub.bulk import insert_rows

SCHEMA_VERSION = 2
DEFAULT_SHAPE = Path(__file__).resolve().parents[2] / "mappings" / "targets" / "ehr.yaml"
# (vendor, dimension code, dimension name) -> (competency code, competency name)
CompetencyOf = Callable[[str, str | None, str | None], tuple[str, str]]


def _vendor_code(vendor: str, code: str | None, name: str | None) -> tuple[str, str]:
    """Without the competency model: the dimension is kept under the vendor's code."""
    return f"{vendor}:{code}", f"{vendor}:{code}"

metadata = MetaData()

ehr_candidates = Table(
    "ehr_candidates", metadata,
    Column("candidate_key", String(36), primary_key=True),
    Column("full_name", String(64)),
    Column("national_id", String(18)),
    Column("mobile", String(20)),
    Column("email", String(255)),
    Column("updated_at", DateTime),
)

ehr_interview_results = Table(
    "ehr_interview_results", metadata,
    Column("result_key", String(200), primary_key=True),
    Column("candidate_key", String(36), index=True),
    Column("vendor", String(64)),
    Column("position_code", String(64)),
    Column("position_name", String(255)),
    Column("department", String(255)),
    Column("business_unit", String(255)),
    Column("interview_started_at", DateTime),      # UTC
    Column("interview_completed_at", DateTime),    # UTC
    Column("overall_score", Numeric(9, 2, asdecimal=False)),
    Column("score_max", Numeric(9, 2, asdecimal=False)),
    Column("status", String(20)),
    Column("recommendation", String(32)),
    Column("ai_comment", Text),
    Column("dimension_scores", Text),  # JSON: [{code, name, score, comment}]
    Column("video_url", Text),
    Column("video_expires_at", DateTime),
    Column("report_url", Text),
    Column("interviewer", String(255)),
    Column("source_updated_at", DateTime),
    Column("hub_version", Integer),
    Column("idempotency_key", String(64)),
    Column("delivered_at", DateTime),
    # schema version 2: what HR reads
    Column("status_label", String(16)),            # 通过 / 未通过 / 待定 / 未完成
    Column("recommendation_label", String(16)),    # 推荐 / 待定 / 不推荐
    Column("time_zone", String(64)),               # the group's time zone, e.g. Asia/Shanghai
    Column("interview_started_local", DateTime),   # wall-clock time in that zone
    Column("interview_started_offset", String(6)), # its UTC offset, e.g. +08:00
    Column("interview_completed_local", DateTime),
    Column("interview_completed_offset", String(6)),
)

# One row per dimension score of a result, with the group competency it belongs to.
ehr_dimension_scores = Table(
    "ehr_dimension_scores", metadata,
    Column("result_key", String(200), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("dimension_code", String(64)),
    Column("dimension_name", String(255)),
    Column("competency_code", String(64), index=True),   # the vendor's "<vendor>:<code>" when no rule maps it
    Column("competency_name", String(64)),
    Column("score", Numeric(9, 2, asdecimal=False)),
    Column("score_max", Numeric(9, 2, asdecimal=False)),
    Column("comment", Text),
)

ehr_schema_version = Table(
    "ehr_schema_version", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("upgraded_at", DateTime),
)

V2_COLUMNS = ("status_label", "recommendation_label", "time_zone", "interview_started_local", "interview_started_offset",
              "interview_completed_local", "interview_completed_offset")


class EhrSqlTarget:
    name = "ehr"

    def __init__(self, url: str, engine=None, shape: Shape | None = None, competency_of: CompetencyOf | None = None,
                 time_zone: str = "Asia/Shanghai"):
        self.engine = engine or create_engine(url)
        self.shape = shape or Shape.load(DEFAULT_SHAPE)
        self.competency_of = competency_of or _vendor_code
        self.zone_name, self.zone = time_zone, ZoneInfo(time_zone)
        upgrade(self.engine, self)

    def erase(self, candidate_key: str, result_keys: list[str]) -> None:
        """A data-subject erasure: the candidate's archive rows go. Repeating it is harmless."""
        with self.engine.begin() as conn:
            keys = set(result_keys) | set(conn.scalars(select(ehr_interview_results.c.result_key).where(
                ehr_interview_results.c.candidate_key == candidate_key)))
            if keys:
                conn.execute(delete(ehr_dimension_scores).where(ehr_dimension_scores.c.result_key.in_(sorted(keys))))
            conn.execute(delete(ehr_interview_results).where(
                (ehr_interview_results.c.candidate_key == candidate_key)
                | ehr_interview_results.c.result_key.in_(result_keys)))
            conn.execute(delete(ehr_candidates).where(ehr_candidates.c.candidate_key == candidate_key))

    def upsert(self, payloads: list[tuple[str, dict]]) -> None:
        """(idempotency key, payload) pairs, in one EHR transaction.

        Two relays (two sources' deliver tasks) can write the same candidate at once: the one whose
        insert loses the race sees the other's row on a second try and updates it instead."""
        try:
            self._upsert(payloads)
        except IntegrityError:
            self._upsert(payloads)

    def _upsert(self, payloads: list[tuple[str, dict]]) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self.engine.begin() as conn:
            cand_rows = {p["candidate"]["candidate_key"]: _candidate_row(p["candidate"], now) for _, p in payloads}
            have = set(conn.scalars(select(ehr_candidates.c.candidate_key).where(
                ehr_candidates.c.candidate_key.in_(list(cand_rows)))))
            if new := [r for k, r in cand_rows.items() if k not in have]:
                insert_rows(conn, ehr_candidates, new)
            if old := [{**r, "k": k} for k, r in cand_rows.items() if k in have]:
                conn.execute(update(ehr_candidates).where(ehr_candidates.c.candidate_key == bindparam("k")), old)

            rows, dims = {}, {}
            for idem, p in payloads:  # in outbox order: a later version of one result wins
                key = p["result"]["result_key"]
                rows[key] = {**_result_row(p, idem, now), **self.readable(p["result"])}
                dims[key] = self.dimension_rows(key, p["result"]["vendor"], p["dimensions"])
            versions = dict(conn.execute(select(ehr_interview_results.c.result_key, ehr_interview_results.c.hub_version)
                                         .where(ehr_interview_results.c.result_key.in_(list(rows)))).all())
            if new := [r for k, r in rows.items() if k not in versions]:
                insert_rows(conn, ehr_interview_results, new)
            if newer := [{**r, "k": k} for k, r in rows.items() if k in versions and r["hub_version"] > versions[k]]:
                conn.execute(update(ehr_interview_results).where(ehr_interview_results.c.result_key == bindparam("k")), newer)
            written = [r["result_key"] for r in new] + [r["k"] for r in newer]
            if written:
                conn.execute(delete(ehr_dimension_scores).where(ehr_dimension_scores.c.result_key.in_(written)))
                insert_rows(conn, ehr_dimension_scores, [d for k in written for d in dims[k]])

    # -- what HR reads ----------------------------------------------------------------------------
    def readable(self, result: dict) -> dict:
        """Labels beside the codes and the interview times in the group's time zone."""
        shaped = self.shape.render({"result": result})
        out = {k: shaped.get(k) for k in ("status_label", "recommendation_label")}
        out["time_zone"] = self.zone_name
        for which, field in (("started", "started_at"), ("completed", "completed_at")):
            out[f"interview_{which}_local"], out[f"interview_{which}_offset"] = self.local(result.get(field))
        return out

    def local(self, value: str | datetime | None) -> tuple[datetime | None, str | None]:
        if value is None:
            return None, None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:  # the EHR's own UTC columns keep no zone
            moment = moment.replace(tzinfo=timezone.utc)
        here = moment.astimezone(self.zone)
        return here.replace(tzinfo=None), _offset_text(here.utcoffset())

    def dimension_rows(self, result_key: str, vendor: str, dimensions: list[dict]) -> list[dict]:
        out = []
        for i, d in enumerate(dimensions):
            comp_code, comp_name = self.competency_of(vendor, d.get("code"), d.get("name"))
            out.append(dict(result_key=result_key, seq=i, dimension_code=d.get("code"), dimension_name=d.get("name"),
                            competency_code=comp_code, competency_name=comp_name, score=d.get("score"), score_max=100,
                            comment=d.get("comment")))
        return out


def upgrade(engine, target: EhrSqlTarget) -> int:
    """Bring the EHR tables to SCHEMA_VERSION in place; returns the number of rows backfilled.

    Version 1 had ehr_candidates and ehr_interview_results (with the JSON dimension column) only.
    Missing tables are created, missing columns added (ALTER TABLE ... ADD COLUMN, which all three
    databases take), and existing results get their labels, local times and dimension rows. Safe to
    run twice and from two processes at once: a table or column another process added is taken as
    added."""
    _create_tables(engine)
    with engine.connect() as conn:
        current = conn.scalar(select(ehr_schema_version.c.version).where(ehr_schema_version.c.id == 1))
    if current is not None and current >= SCHEMA_VERSION:
        return 0
    have = {c["name"] for c in inspect(engine).get_columns("ehr_interview_results")}
    for name in V2_COLUMNS:
        if name in have:
            continue
        column = ehr_interview_results.c[name]
        ddl = f"ALTER TABLE ehr_interview_results ADD COLUMN {name} {column.type.compile(engine.dialect)}"
        try:
            with engine.begin() as conn:
                conn.execute(text(ddl))
        except (OperationalError, ProgrammingError):
            if name not in {c["name"] for c in inspect(engine).get_columns("ehr_interview_results")}:
                raise
    filled = _backfill(engine, target)
    with engine.begin() as conn:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        if conn.execute(update(ehr_schema_version).where(ehr_schema_version.c.id == 1)
                        .values(version=SCHEMA_VERSION, upgraded_at=now)).rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(insert(ehr_schema_version).values(id=1, version=SCHEMA_VERSION, upgraded_at=now))
            except IntegrityError:
                pass  # another process recorded it first
    return filled


def _create_tables(engine) -> None:
    """The tables missing (create_all never alters an existing one). Two processes starting on a new
    EHR database at once (two sources' deliver tasks after a first start) both find a table missing
    and both create it; the later CREATE fails, and create_all again finds what the other made.
    (PostgreSQL may report two CREATEs at the same moment as a duplicate key in its catalogue.)"""
    for _ in range(len(metadata.tables)):  # the other process may be one table ahead each time
        try:
            metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            continue
    metadata.create_all(engine)  # a failure that is not that race: its own error


def _backfill(engine, target: EhrSqlTarget, batch: int = 1000) -> int:
    """Rows written by version 1 (no labels yet): labels, local times, dimension rows from the JSON."""
    t = ehr_interview_results
    filled = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(select(t.c.result_key, t.c.vendor, t.c.status, t.c.recommendation,
                                       t.c.interview_started_at, t.c.interview_completed_at, t.c.dimension_scores)
                                .where(t.c.time_zone.is_(None)).order_by(t.c.result_key).limit(batch)).all()
            if not rows:
                return filled
            keys = [r.result_key for r in rows]
            conn.execute(delete(ehr_dimension_scores).where(ehr_dimension_scores.c.result_key.in_(keys)))
            child, changes = [], []
            for r in rows:
                result = {"status": r.status, "recommendation": r.recommendation,
                          "started_at": r.interview_started_at, "completed_at": r.interview_completed_at}
                changes.append({**target.readable(result), "k": r.result_key})
                child += target.dimension_rows(r.result_key, r.vendor, json.loads(r.dimension_scores or "[]"))
            conn.execute(update(t).where(t.c.result_key == bindparam("k")), changes)
            if child:
                conn.execute(insert(ehr_dimension_scores), child)
            filled += len(rows)


def _candidate_row(c: dict, now: datetime) -> dict:
    return dict(candidate_key=c["candidate_key"], full_name=c.get("full_name"), national_id=c.get("national_id"),
                mobile=c.get("mobile"), email=c.get("email"), updated_at=now)


def _result_row(p: dict, idem: str, now: datetime) -> dict:
    r = p["result"]
    return dict(
        result_key=r["result_key"], candidate_key=p["candidate"]["candidate_key"], vendor=r["vendor"],
        position_code=r.get("position_code"), position_name=r.get("position_name"), department=r.get("department"),
        business_unit=r.get("business_unit"), interview_started_at=_naive(r.get("started_at")),
        interview_completed_at=_naive(r.get("completed_at")), overall_score=r.get("overall_score"), score_max=100,
        status=r.get("status"), recommendation=r.get("recommendation"), ai_comment=r.get("ai_comment"),
        dimension_scores=jsonfast.dumps([{k: d.get(k) for k in ("code", "name", "score", "comment")}
                                         for d in p["dimensions"]]),
        video_url=r.get("video_url"), video_expires_at=_naive(r.get("video_expires_at")), report_url=r.get("report_url"),
        interviewer=r.get("interviewer"), source_updated_at=_naive(r.get("source_updated_at")),
        hub_version=r["version"], idempotency_key=idem, delivered_at=now,
    )


@lru_cache(maxsize=64)
def _offset_text(offset: timedelta) -> str:
    """A UTC offset as ISO 8601 spells it ("+08:00", "-03:30"), cached: a zone has a few, and
    strftime's "%z" and a slice cost more than the rest of a row's local times."""
    seconds = int(offset.total_seconds())
    minutes = abs(seconds) // 60
    return f"{'-' if seconds < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def _naive(iso: str | None) -> datetime | None:
    """UTC as naive: the EHR's DATETIME columns keep no zone."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).replace(tzinfo=None) if iso else None
