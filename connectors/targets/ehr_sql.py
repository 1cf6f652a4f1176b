"""The EHR as a SQL target: candidate archive and interview-result tables in the EHR's database.

In production these are the EHR's own (or intermediate) tables; by default a second SQLite file.
Writes are idempotent: a result is keyed by "vendor:result id" and only a higher hub version
replaces what is there, so a redelivered or reordered batch changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import (
    Column, DateTime, Integer, MetaData, Numeric, String, Table, Text, bindparam, create_engine, delete, insert, select,
    update,
)
from sqlalchemy.exc import IntegrityError

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
    Column("interview_started_at", DateTime),
    Column("interview_completed_at", DateTime),
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
)


class EhrSqlTarget:
    name = "ehr"

    def __init__(self, url: str, engine=None):
        self.engine = engine or create_engine(url)
        metadata.create_all(self.engine)

    def erase(self, candidate_key: str, result_keys: list[str]) -> None:
        """A data-subject erasure: the candidate's archive rows go. Repeating it is harmless."""
        with self.engine.begin() as conn:
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
                conn.execute(insert(ehr_candidates), new)
            if old := [{**r, "k": k} for k, r in cand_rows.items() if k in have]:
                conn.execute(update(ehr_candidates).where(ehr_candidates.c.candidate_key == bindparam("k")), old)

            rows = {}
            for idem, p in payloads:  # in outbox order: a later version of one result wins
                rows[p["result"]["result_key"]] = _result_row(p, idem, now)
            versions = dict(conn.execute(select(ehr_interview_results.c.result_key, ehr_interview_results.c.hub_version)
                                         .where(ehr_interview_results.c.result_key.in_(list(rows)))).all())
            if new := [r for k, r in rows.items() if k not in versions]:
                conn.execute(insert(ehr_interview_results), new)
            if newer := [{**r, "k": k} for k, r in rows.items() if k in versions and r["hub_version"] > versions[k]]:
                conn.execute(update(ehr_interview_results).where(ehr_interview_results.c.result_key == bindparam("k")), newer)


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
        dimension_scores=json.dumps([{k: d.get(k) for k in ("code", "name", "score", "comment")} for d in p["dimensions"]],
                                    ensure_ascii=False),
        video_url=r.get("video_url"), video_expires_at=_naive(r.get("video_expires_at")), report_url=r.get("report_url"),
        interviewer=r.get("interviewer"), source_updated_at=_naive(r.get("source_updated_at")),
        hub_version=r["version"], idempotency_key=idem, delivered_at=now,
    )


def _naive(iso: str | None) -> datetime | None:
    """UTC as naive: the EHR's DATETIME columns keep no zone."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).replace(tzinfo=None) if iso else None
