"""Data-subject requests (PIPL Art. 45 access, Art. 47 deletion) for one person, by resident ID.

The person is found by blind index (every key version), never by scanning plaintext. An export
writes everything the hub holds on them to a file for an authorised operator; an erasure removes
it from the hub, queues deletion requests to every target, and leaves a tombstone naming only the
candidate key and counts.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import delete, insert, or_, select, update

from hiresync import jsonfast
from hiresync.privacy import identifiers
from hiresync.errors import HireSyncError
from hiresync.hub.models import (
    AuditEvent, Candidate, CandidateVendorId, DimensionScore, IdentityReview, InterviewResult, Outbox, RawPayload,
    PerformanceRating, RecordLineage, StatusEvent,
)
from hiresync.hub.store import transaction
from hiresync.privacy.pii import Keyring, mask_national_id
from hiresync.config.settings import Settings
from hiresync.config.sources import load_sources

CANDIDATE_FIELDS = ("full_name", "national_id", "mobile", "email")


def find_candidate(s, keys: Keyring, national_id: str) -> Candidate:
    nid = identifiers.normalize_national_id(national_id)
    if identifiers.national_id_problem(nid):
        raise HireSyncError(f"{mask_national_id(nid)} is not a valid resident ID number")
    cand = s.scalars(select(Candidate).where(Candidate.national_id_bidx.in_(keys.blind_indexes(nid)))).first()
    if cand is None:
        raise HireSyncError(f"the hub holds no candidate with resident ID {mask_national_id(nid)}")
    return cand


def export(settings: Settings, keys: Keyring, national_id: str, out: Path, operator: str) -> dict:
    with transaction(settings.hub_url) as s:
        cand = find_candidate(s, keys, national_id)
        doc = {
            "candidate": {"candidate_key": cand.candidate_key, "created_at": cand.created_at.isoformat(),
                          **{f: keys.decrypt(getattr(cand, f"{f}_enc"), f"candidates.{f}:{cand.candidate_key}")
                             for f in CANDIDATE_FIELDS if getattr(cand, f"{f}_enc")}},
            "vendor_ids": [{"vendor": v.vendor, "vendor_candidate_id": v.vendor_candidate_id} for v in s.scalars(
                select(CandidateVendorId).where(CandidateVendorId.candidate_id == cand.id))],
            "interview_results": [],
        }
        for r in s.scalars(select(InterviewResult).where(InterviewResult.candidate_id == cand.id)):
            doc["interview_results"].append(_result_doc(s, keys, r))
        _write_private(out, doc)
        s.add(AuditEvent(kind="subject_export", subject_ref=f"candidate:{cand.candidate_key}", actor=operator,
                         detail={"results": len(doc["interview_results"]), "file": str(out)}))
    return {"candidate_key": cand.candidate_key, "results": len(doc["interview_results"]), "file": str(out)}


def _write_private(out: Path, doc: dict) -> None:
    """A new file only its owner can read: never an existing file (it keeps its mode, others may hold
    it open) and never through a symlink (it could point anywhere)."""
    if out.is_symlink() or out.exists():
        raise HireSyncError(f"{out} exists: an export is written to a new file only (choose another name)")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise HireSyncError(f"{out} exists: an export is written to a new file only (choose another name)") from None
    os.fchmod(fd, 0o600)  # whatever the umask
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=2, default=str)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _result_doc(s, keys: Keyring, r: InterviewResult) -> dict:
    skip = {"id", "candidate_id", "video_url_enc"}
    doc = {c.name: getattr(r, c.name) for c in InterviewResult.__table__.columns if c.name not in skip}
    if r.video_url_enc:
        doc["video_url"] = keys.decrypt(r.video_url_enc, f"interview_results.video_url:{r.vendor}:{r.vendor_result_id}")
    doc["dimensions"] = [{"code": d.code, "name": d.name, "score": d.score, "raw_score": d.raw_score,
                          "scale": d.scale, "comment": d.comment}
                         for d in s.scalars(select(DimensionScore).where(DimensionScore.result_id == r.id))]
    doc["vendor_payloads"] = [
        jsonfast.loads(keys.decrypt(p.payload_enc, f"raw_payloads:{p.source}:{p.payload_hash}"))
        for p in s.scalars(select(RawPayload).where(RawPayload.id.in_(
            select(RecordLineage.raw_payload_id).where(RecordLineage.result_id == r.id)), RawPayload.payload_enc.is_not(None)))]
    doc["deliveries"] = [{"target": o.target, "status": o.status, "sent_at": o.sent_at, "target_ref": o.target_ref}
                         for o in s.scalars(select(Outbox).where(Outbox.result_id == r.id))]
    return doc


def erase(settings: Settings, keys: Keyring, national_id: str, operator: str) -> dict:
    """Remove the person from the hub in one transaction and queue erasure at every target."""
    targets = sorted({t for src in load_sources(settings).values() for t in src.targets})
    now = datetime.now(timezone.utc)
    with transaction(settings.hub_url) as s:
        cand = find_candidate(s, keys, national_id)
        results = s.execute(select(InterviewResult.id, InterviewResult.vendor, InterviewResult.vendor_result_id)
                            .where(InterviewResult.candidate_id == cand.id)).all()
        ids = [r.id for r in results]
        raw_ids = select(RecordLineage.raw_payload_id).where(RecordLineage.result_id.in_(ids))
        s.execute(update(RawPayload).where(RawPayload.id.in_(raw_ids)).values(payload_enc=None, purged_at=now))
        s.execute(update(RecordLineage).where(RecordLineage.result_id.in_(ids)).values(result_id=None))
        # Snapshots of what was sent carry the person's data; unsent ones must never go out now.
        s.execute(delete(Outbox).where(Outbox.result_id.in_(ids)))
        s.execute(delete(DimensionScore).where(DimensionScore.result_id.in_(ids)))
        # The workflow history is about this person too (and references the rows that go).
        s.execute(delete(StatusEvent).where(or_(StatusEvent.result_id.in_(ids), StatusEvent.candidate_id == cand.id)))
        s.execute(delete(InterviewResult).where(InterviewResult.id.in_(ids)))
        s.execute(delete(CandidateVendorId).where(CandidateVendorId.candidate_id == cand.id))
        s.execute(delete(PerformanceRating).where(PerformanceRating.candidate_id == cand.id))
        # A review names the candidate it collided with (masked details of this person): it goes too,
        # before the candidate row it references.
        reviews = s.execute(delete(IdentityReview).where(IdentityReview.candidate_id == cand.id)).rowcount
        s.delete(cand)
        request = {"candidate_key": cand.candidate_key, "result_keys": [f"{r.vendor}:{r.vendor_result_id}" for r in results]}
        s.execute(insert(Outbox.__table__), [
            dict(target=t, kind="erase", result_id=None, result_version=0, status="pending", run_id=f"erase:{operator}",
                 idempotency_key=(idem := hashlib.sha256(f"erase|{t}|{cand.candidate_key}".encode()).hexdigest()),
                 payload_enc=keys.encrypt(jsonfast.dumps(request), f"outbox:{t}:{idem}"))
            for t in targets])
        s.add(AuditEvent(kind="subject_erase", subject_ref=f"candidate:{cand.candidate_key}", actor=operator,
                         detail={"results": len(ids), "identity_reviews": reviews, "erase_requests": targets}))
    return {"candidate_key": cand.candidate_key, "results": len(ids), "erase_requests": targets}
