"""`hiresync trace`: the whole journey of one record, from the hub's own audit trail.

Every pulled payload version (record_lineage + raw_payloads), its validation and quarantine
outcome, the mapping version and the rule behind each canonical field (mapping_versions), the
stored result and each target's delivery (outbox). Personal data is shown masked only: values
from the encrypted raw payload are decrypted in memory and masked before they reach the output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.records import get_path
from hiresync import jsonfast
from hiresync.errors import HireSyncError
from hiresync.hub.models import (
    Candidate, DimensionScore, InterviewResult, MappingVersion, Outbox, Quarantine, RawPayload, RecordLineage, Run,
)
from hiresync.hub.store import transaction
from hiresync.audit.rules import FieldRule, MappingRules
from hiresync.mapping.spec import PII_KIND
from hiresync.privacy.pii import Keyring, mask_url, mask_value
from hiresync.privacy.payloads import open_payload
from hiresync.config.settings import Settings

# A resident ID as masks show it (pii.mask_national_id): 6 digits, 8 stars, 4 characters.
MASKED_ID = re.compile(r"^\d{6}\*{8}\d{3}[\dX]$")
# Outcomes after which the stored result holds what this payload said.
PRODUCED = ("inserted", "updated")


class RecordNotFound(HireSyncError):
    pass


class AmbiguousRecord(HireSyncError):
    """A masked ID can stand for several people: the matches are listed, masked, to choose from."""

    def __init__(self, message: str, matches: list[dict]):
        super().__init__(message)
        self.matches = matches


@dataclass(frozen=True)
class RecordRef:
    source: str
    vendor_result_id: str
    result: InterviewResult | None  # None when every version of it was quarantined

    @property
    def key(self) -> str:
        return f"{self.result.vendor if self.result else self.source}:{self.vendor_result_id}"


def trace(settings: Settings, keys: Keyring, query: str) -> dict:
    with transaction(settings.hub_url) as s:
        return {"query": query, "records": [trace_record(s, keys, ref) for ref in resolve(s, query)]}


def resolve(s: Session, query: str) -> list[RecordRef]:
    """A result key "vendor:id", a vendor result id, or a masked resident ID -> the records it names."""
    q = query.strip()
    if MASKED_ID.match(q.upper()):
        return _by_masked_id(s, q.upper())
    if ":" in q:
        vendor, _, vid = q.partition(":")
        results = s.scalars(select(InterviewResult).where(
            InterviewResult.vendor == vendor, InterviewResult.vendor_result_id == vid)).all()
        refs = [_ref_of(s, r) for r in results]
        if not refs and _lineage_exists(s, vendor, vid):
            refs = [RecordRef(vendor, vid, None)]
    else:
        refs = [_ref_of(s, r) for r in s.scalars(select(InterviewResult).where(
            InterviewResult.vendor_result_id == q).order_by(InterviewResult.vendor))]
        known = {r.source for r in refs}
        for (source,) in s.execute(select(RecordLineage.source).where(
                RecordLineage.vendor_result_id == q, RecordLineage.result_id.is_(None)).distinct()):
            if source not in known:
                refs.append(RecordRef(source, q, None))
    if not refs:
        raise RecordNotFound(
            f"no record {q!r} in the hub: it is not the key of a stored result (vendor:id), the id of a "
            "pulled vendor result, or the masked resident ID of a known candidate")
    return refs


def _by_masked_id(s: Session, masked: str) -> list[RecordRef]:
    people = s.scalars(select(Candidate).where(Candidate.national_id_masked == masked).order_by(Candidate.id)).all()
    if not people:
        raise RecordNotFound(f"no candidate with resident ID {masked} in the hub")
    results = {p.id: s.scalars(select(InterviewResult).where(InterviewResult.candidate_id == p.id)
                               .order_by(InterviewResult.id)).all() for p in people}
    if len(people) > 1:
        matches = [{"candidate_key": p.candidate_key, "full_name": p.full_name_masked, "national_id": p.national_id_masked,
                    "results": [f"{r.vendor}:{r.vendor_result_id}" for r in results[p.id]]} for p in people]
        raise AmbiguousRecord(f"{len(people)} candidates match {masked}: trace one of their result keys", matches)
    return [_ref_of(s, r) for r in results[people[0].id]]


def _ref_of(s: Session, result: InterviewResult) -> RecordRef:
    source = s.scalar(select(RecordLineage.source).where(RecordLineage.result_id == result.id).limit(1))
    return RecordRef(source or result.vendor, result.vendor_result_id, result)


def _lineage_exists(s: Session, source: str, vid: str) -> bool:
    return s.scalar(select(RecordLineage.id).where(
        RecordLineage.source == source, RecordLineage.vendor_result_id == vid).limit(1)) is not None


# -- one record ------------------------------------------------------------------------------------
def trace_record(s: Session, keys: Keyring, ref: RecordRef) -> dict:
    rows = s.execute(
        select(RecordLineage, RawPayload.received_at, Run.started_at)
        .join(RawPayload, RawPayload.id == RecordLineage.raw_payload_id)
        .outerjoin(Run, Run.id == RecordLineage.run_id)
        .where(RecordLineage.source == ref.source, RecordLineage.vendor_result_id == ref.vendor_result_id)
        .order_by(RecordLineage.id)).all()
    quarantine = s.scalars(select(Quarantine).where(
        Quarantine.source == ref.source, Quarantine.vendor_result_id == ref.vendor_result_id).order_by(Quarantine.id)).all()
    reasons = {(q.run_id, q.raw_payload_id): q for q in quarantine}
    payloads = []
    for lin, received_at, run_started in rows:
        q = reasons.get((lin.run_id, lin.raw_payload_id))
        payloads.append({
            "run_id": lin.run_id, "run_started_at": _iso(run_started), "received_at": _iso(received_at),
            "payload_hash": lin.payload_hash, "raw_payload_id": lin.raw_payload_id,
            "mapping_version": lin.mapping_version, "outcome": lin.outcome,
            "validation": ({"passed": False, "reason_code": q.reason_code, "problems": q.problems,
                            "quarantine_status": q.status, "resolved_run_id": q.resolved_run_id}
                           if q else {"passed": True}),
        })
    # The payload behind what is stored: the newest version that inserted or updated the result.
    producing = next((lin for lin, *_ in reversed(rows) if lin.outcome in PRODUCED), rows[-1][0] if rows else None)
    payload = decrypt_payload(s, keys, producing) if producing else None
    mapping_version = ref.result.mapping_version if ref.result else (producing.mapping_version if producing else None)
    mapping = find_mapping(s, mapping_version, ref, producing)
    doc: dict[str, Any] = {
        "result_key": ref.key, "source": ref.source, "vendor_result_id": ref.vendor_result_id,
        "payloads": payloads,
        "quarantined_versions": sum(1 for p in payloads if not p["validation"]["passed"]),
        "mapping": None, "result": None, "deliveries": [],
    }
    if mapping:
        rules = MappingRules.from_yaml(mapping.spec_text)
        doc["mapping"] = {
            "mapping": mapping.mapping, "version": mapping.version, "fingerprint": mapping.fingerprint,
            "first_run_id": mapping.first_run_id, "key_path": rules.key_path,
            "fields": [_field_line(rules, rule, payload) for rule in rules.fields.values()],
        }
    if ref.result:
        doc["result"] = stored_result(s, keys, ref.result)
        doc["deliveries"] = [
            {"target": o.target, "result_version": o.result_version, "status": o.status, "attempts": o.attempts,
             "sent_at": _iso(o.sent_at), "target_ref": o.target_ref, "last_error": o.last_error, "run_id": o.run_id}
            for o in s.scalars(select(Outbox).where(Outbox.result_id == ref.result.id).order_by(Outbox.id))]
    return doc


def find_mapping(s: Session, version: str | None, ref: RecordRef, producing: RecordLineage | None) -> MappingVersion | None:
    """The stored spec behind a record. Lineage keeps the version, not the fingerprint: prefer the
    spec first used by the producing run, else the newest one of that version for this vendor."""
    if version is None:
        return None
    specs = s.scalars(select(MappingVersion).where(MappingVersion.version == version)
                      .order_by(MappingVersion.created_at.desc())).all()
    vendor = ref.result.vendor if ref.result else ref.source
    specs = [m for m in specs if m.mapping in (vendor, ref.source) or MappingRules.from_yaml(m.spec_text).vendor == vendor]
    if producing is not None:
        for m in specs:
            if m.first_run_id == producing.run_id:
                return m
    return specs[0] if specs else None


def stored_result(s: Session, keys: Keyring, r: InterviewResult) -> dict:
    cand = s.get(Candidate, r.candidate_id)
    dims = s.scalars(select(DimensionScore).where(DimensionScore.result_id == r.id).order_by(DimensionScore.seq)).all()
    return {
        "candidate": {"candidate_key": cand.candidate_key, "full_name": cand.full_name_masked,
                      "national_id": cand.national_id_masked, "mobile": cand.mobile_masked, "email": cand.email_masked},
        "position_code": r.position_code, "position_name": r.position_name, "department": r.department,
        "business_unit": r.business_unit, "started_at": _iso(r.started_at), "completed_at": _iso(r.completed_at),
        "overall_score": r.overall_score, "raw_score": r.raw_score, "score_scale": r.score_scale,
        "status": r.status, "recommendation": r.recommendation, "interviewer": r.interviewer,
        "video_url": _video(keys, r), "report_url": r.report_url,
        "dimensions": [{"code": d.code, "name": d.name, "score": d.score, "raw_score": d.raw_score, "scale": d.scale}
                       for d in dims],
        "source_updated_at": _iso(r.source_updated_at), "mapping_version": r.mapping_version, "version": r.version,
        "content_hash": r.content_hash, "first_run_id": r.first_run_id, "last_run_id": r.last_run_id,
    }


def _field_line(rules: MappingRules, rule: FieldRule, payload: dict | None) -> dict:
    line = rule.as_dict() | {"vendor_path": rules.vendor_path(rule)}
    if payload is not None and rule.path is not None and not rule.field.startswith("dimensions."):
        line["vendor_value"] = mask_value(PII_KIND.get(rule.field), get_path(payload, rule.path))
    return line


def decrypt_payload(s: Session, keys: Keyring, lin: RecordLineage) -> dict | None:
    raw = s.get(RawPayload, lin.raw_payload_id)
    if raw is None:  # removed by retention: the lineage row outlives the payload
        return None
    return jsonfast.loads(open_payload(s, keys, raw.source, raw.payload_hash, raw.payload_enc))


def _video(keys: Keyring, r: InterviewResult) -> str | None:
    if not r.video_url_enc:
        return None
    return mask_url(keys.decrypt(r.video_url_enc, f"interview_results.video_url:{r.vendor}:{r.vendor_result_id}"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- text ------------------------------------------------------------------------------------------
OUTCOME_LABELS = {"inserted": "新增 inserted", "updated": "更新 updated", "unchanged": "未变 unchanged",
                  "stale": "旧版本 stale", "superseded": "同批被新版本取代 superseded", "quarantined": "隔离 quarantined"}


def render_text(doc: dict) -> str:
    out: list[str] = []
    for rec in doc["records"]:
        out += [f"记录 record {rec['result_key']}  (source {rec['source']})", "",
                f"拉取的版本 pulled payload versions ({len(rec['payloads'])}):"]
        for p in rec["payloads"]:
            out.append(f"  {p['run_started_at'] or '?'}  run {p['run_id']}")
            out.append(f"      payload {p['payload_hash'][:16]}… (raw payload #{p['raw_payload_id']}), mapping "
                       f"{p['mapping_version']} -> {OUTCOME_LABELS.get(p['outcome'], p['outcome'])}")
            v = p["validation"]
            if not v["passed"]:
                problems = "; ".join(f"{x['field']} {x['rule']} (value {x.get('value')})" for x in v["problems"])
                out.append(f"      校验未通过 quarantined [{v['quarantine_status']}]: {problems}")
        m = rec["mapping"]
        if m:
            out += ["", f"映射 mapping {m['mapping']} {m['version']} (fingerprint {m['fingerprint']}, "
                        f"first used by run {m['first_run_id']}); record key from {m['key_path']}"]
            for f in m["fields"]:
                value = f" = {f['vendor_value']}" if "vendor_value" in f else ""
                out.append(f"  {f['field']:<28} <- {f['rule']}{value}")
        r = rec["result"]
        if r:
            c = r["candidate"]
            out += ["", f"存储结果 stored result (version {r['version']}, last run {r['last_run_id']}):",
                    f"  candidate {c['candidate_key']}: {c['full_name']}, {c['national_id']}, {c['mobile'] or '-'}, "
                    f"{c['email'] or '-'}",
                    f"  position {r['position_code']} {r['position_name'] or ''} / {r['department'] or ''}",
                    f"  score {r['overall_score']} (raw {r['raw_score']} of {r['score_scale']}), status {r['status']}, "
                    f"recommendation {r['recommendation']}",
                    "  dimensions " + ", ".join(f"{d['code']} {d['score']}" for d in r["dimensions"]),
                    f"  video {r['video_url'] or '-'}"]
        else:
            out += ["", "存储结果 stored result: none (every version was quarantined)"]
        out += ["", "投递 deliveries:"]
        out += [f"  {d['target']}: {d['status']} after {d['attempts']} attempt(s), sent {d['sent_at'] or '-'}, "
                f"target ref {d['target_ref'] or '-'} (version {d['result_version']})"
                + (f", last error {d['last_error']}" if d["last_error"] else "")
                for d in rec["deliveries"]] or ["  none"]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
