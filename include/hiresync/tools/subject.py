"""Data-subject requests (PIPL Art. 45 access, Art. 47 deletion) for one person, by resident ID.

(In tools/, not privacy/: it reads every stage's storage, staging included.)

`find_holdings` finds every row and file the hub holds on the person: the candidate by blind
index (every key version), their results and what hangs off them, and, by decrypting them, every
encrypted payload that names them (raw payloads, hence quarantine and lineage; webhook inbox
deliveries; outbox bodies; staging folders left by crashed runs) and the identity reviews of those
records. A payload names the person when one of its values is their resident ID, when it holds
both their mobile and their e-mail, or when it is one of their results. An export writes exactly
that set; an erasure removes exactly that set and keeps value-free tombstones:

- raw payload rows without their payload (source, vendor result id, hash: so a re-sent identical
  payload is recognised, and the lineage of other records stays consistent);
- sent outbox rows without body, result, raw payload, target reference or error, status `erased`:
  the hub's record that it once delivered to that target;
- one `subject_erase` audit event naming the candidate key, the counts and the targets asked to delete.

Deletion requests go to every target that the person's outbox history names, whether or not the
target is still configured in sources.yaml.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import delete, insert, or_, select, tuple_, update

from hiresync import jsonfast
from hiresync.config.files import create_private
from hiresync.config.settings import Settings
from hiresync.errors import HireSyncError
from hiresync.hub.models import (
    AuditEvent, Candidate, CandidateVendorId, DimensionScore, IdentityReview, InboxDelivery, InterviewResult, Outbox,
    PerformanceRating, Quarantine, RawPayload, RecordLineage, Run, StatusEvent,
)
from hiresync.hub.store import transaction
from hiresync.ingest.staging import Staging
from hiresync.privacy import identifiers
from hiresync.privacy.keys import inbox_context
from hiresync.privacy.pii import Keyring, mask_national_id
from hiresync.privacy.payloads import open_payload

log = logging.getLogger(__name__)
CANDIDATE_FIELDS = ("full_name", "national_id", "mobile", "email")


@dataclass
class Person:
    """What identifies the person inside a decrypted document."""

    national_id: str
    mobile: str | None = None
    email: str | None = None
    candidate_key: str | None = None

    def named_in(self, doc: Any) -> bool:
        mobile = email = False
        for leaf in _leaves(doc):
            if len(leaf) < 5:
                continue
            if identifiers.normalize_national_id(leaf) == self.national_id or leaf == self.candidate_key:
                return True
            mobile = mobile or (self.mobile is not None and identifiers.normalize_mobile(leaf) == self.mobile)
            email = email or (self.email is not None and identifiers.normalize_email(leaf) == self.email)
            if mobile and email:
                return True
        return False


def _leaves(doc: Any) -> Iterator[str]:
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, (str, int)) and not isinstance(v, bool):
            yield str(v).strip()


@dataclass
class Holdings:
    """Every row and staged file that holds the person (decrypted where encrypted)."""

    candidate: Candidate | None = None
    person_fields: dict = field(default_factory=dict)
    vendor_ids: list = field(default_factory=list)
    results: list = field(default_factory=list)          # InterviewResult
    dimensions: list = field(default_factory=list)       # DimensionScore
    status_events: list = field(default_factory=list)
    raw_payloads: dict = field(default_factory=dict)     # id -> (RawPayload, payload)
    quarantine: list = field(default_factory=list)
    lineage: list = field(default_factory=list)
    identity_reviews: list = field(default_factory=list)
    inbox: list = field(default_factory=list)            # (InboxDelivery, payload)
    outbox: list = field(default_factory=list)           # (Outbox, body or None)
    staging: list = field(default_factory=list)          # (Staging, {file name: [records]})
    unreadable_staging: list = field(default_factory=list)

    def empty(self) -> bool:
        return self.candidate is None and not (self.raw_payloads or self.inbox or self.outbox or self.staging
                                               or self.identity_reviews or self.quarantine)

    def counts(self) -> dict[str, int]:
        return {"results": len(self.results), "raw_payloads": len(self.raw_payloads),
                "quarantine": len(self.quarantine), "lineage": len(self.lineage),
                "identity_reviews": len(self.identity_reviews), "inbox": len(self.inbox),
                "outbox": len(self.outbox), "status_events": len(self.status_events),
                "staging_runs": len(self.staging)}


def find_candidate(s, keys: Keyring, national_id: str) -> Candidate:
    nid = _valid_id(national_id)
    cand = s.scalars(select(Candidate).where(Candidate.national_id_bidx.in_(keys.blind_indexes(nid, "national_id")))).first()
    if cand is None:
        raise HireSyncError(f"the hub holds no candidate with resident ID {mask_national_id(nid)}")
    return cand


def _valid_id(national_id: str) -> str:
    nid = identifiers.normalize_national_id(national_id)
    if identifiers.national_id_problem(nid):
        raise HireSyncError(f"{mask_national_id(nid)} is not a valid resident ID number")
    return nid


def find_holdings(s, settings: Settings, keys: Keyring, national_id: str) -> Holdings:
    nid = _valid_id(national_id)
    h = Holdings()
    person = Person(nid)
    cand = s.scalars(select(Candidate).where(Candidate.national_id_bidx.in_(keys.blind_indexes(nid, "national_id")))).first()
    if cand is not None:
        h.candidate = cand
        h.person_fields = {f: keys.decrypt(getattr(cand, f"{f}_enc"), f"candidates.{f}:{cand.candidate_key}")
                           for f in CANDIDATE_FIELDS if getattr(cand, f"{f}_enc")}
        person = Person(nid, h.person_fields.get("mobile"), h.person_fields.get("email"), cand.candidate_key)
        h.vendor_ids = list(s.scalars(select(CandidateVendorId).where(CandidateVendorId.candidate_id == cand.id)))
        h.results = list(s.scalars(select(InterviewResult).where(InterviewResult.candidate_id == cand.id)))
    result_ids = {r.id for r in h.results}
    result_keys = {(r.vendor, r.vendor_result_id) for r in h.results}
    if result_ids:
        h.dimensions = list(s.scalars(select(DimensionScore).where(DimensionScore.result_id.in_(result_ids))
                                      .order_by(DimensionScore.result_id, DimensionScore.seq)))
    h.status_events = list(s.scalars(select(StatusEvent).where(or_(
        StatusEvent.result_id.in_(result_ids), StatusEvent.candidate_id.in_([cand.id] if cand else [])))))

    # Raw payloads: one of their results, or a payload naming them (a quarantined one has no result).
    for raw in _paged(s, RawPayload, RawPayload.payload_enc.is_not(None)):
        payload = jsonfast.loads(open_payload(s, keys, raw.source, raw.payload_hash, raw.payload_enc))
        if (raw.source, raw.vendor_result_id) in result_keys or person.named_in(payload):
            h.raw_payloads[raw.id] = (raw, payload)
    raw_ids = set(h.raw_payloads)
    record_keys = result_keys | {(raw.source, raw.vendor_result_id) for raw, _ in h.raw_payloads.values()}
    h.quarantine = list(s.scalars(select(Quarantine).where(Quarantine.raw_payload_id.in_(raw_ids))))
    h.lineage = list(s.scalars(select(RecordLineage).where(or_(RecordLineage.raw_payload_id.in_(raw_ids),
                                                                  RecordLineage.result_id.in_(result_ids)))))
    reviews = {r.id: r for r in s.scalars(select(IdentityReview).where(
        IdentityReview.candidate_id.in_([cand.id] if cand else [])))}
    if record_keys:
        reviews.update({r.id: r for r in s.scalars(select(IdentityReview).where(
            tuple_(IdentityReview.source, IdentityReview.vendor_result_id).in_(list(record_keys))))})
    h.identity_reviews = list(reviews.values())

    for row in _paged(s, InboxDelivery):
        payload = jsonfast.loads(keys.decrypt_bytes(row.payload_enc, inbox_context(row.source, row.delivery_id)))
        if person.named_in(payload):
            h.inbox.append((row, payload))

    # Outbox: rows of their results or raw payloads (an upsert whose body is rendered from the raw
    # payload carries none of its own), and any other body naming them. Erase requests are ours.
    for row in _paged(s, Outbox, Outbox.kind != "erase", Outbox.status != "erased"):
        body = (jsonfast.loads(keys.decrypt_bytes(row.payload_enc, f"outbox:{row.target}:{row.idempotency_key}"))
                if row.payload_enc else None)
        if row.result_id in result_ids or row.raw_payload_id in raw_ids or (body is not None and person.named_in(body)):
            h.outbox.append((row, body))

    _find_staged(s, settings, keys, person, h)
    return h


def _paged(s, model, *where, size: int = 500) -> Iterator:
    """Every row, 500 at a time by id (no open cursor while the caller decrypts)."""
    last = 0
    while True:
        rows = list(s.scalars(select(model).where(model.id > last, *where).order_by(model.id).limit(size)))
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1].id


def _find_staged(s, settings: Settings, keys: Keyring, person: Person, h: Holdings) -> None:
    """Staging folders left behind (a run removes its own when it delivers): each is read with its
    run's id (manifest, else the runs table), every encrypted file, record by record."""
    root = settings.staging_dir
    if not root.is_dir():
        return
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.is_symlink()]
    if not folders:
        return
    by_folder = {}
    for run_id in s.scalars(select(Run.id)):
        by_folder.setdefault(re.sub(r"[^A-Za-z0-9_.-]", "_", run_id), run_id)
    for position, folder in enumerate(folders, 1):
        run_id = None
        try:
            run_id = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError):
            pass
        run_id = run_id or by_folder.get(folder.name)
        staging = Staging(root, run_id or folder.name, keys)
        if staging.dir != folder:
            h.unreadable_staging.append(f"staging folder {position} of {len(folders)}")
            continue
        found: dict[str, list] = {}
        try:
            for enc in sorted(folder.glob("*.enc")):
                records = [r for r in staging.read_records(enc.stem) if person.named_in(r)]
                if records:
                    found[enc.stem] = records
        except Exception:  # noqa: BLE001 - a folder we cannot decrypt is reported, not guessed at
            h.unreadable_staging.append(f"staging folder {position} of {len(folders)}")
            continue
        if found:
            h.staging.append((staging, found))


# -- export --------------------------------------------------------------------------------------------
def export(settings: Settings, keys: Keyring, national_id: str, out: Path, operator: str) -> dict:
    with transaction(settings.hub_url) as s:
        h = find_holdings(s, settings, keys, national_id)
        if h.empty():
            raise HireSyncError(f"the hub holds nothing on resident ID {mask_national_id(_valid_id(national_id))}")
        doc = export_doc(s, keys, h)
        _write_private(out, doc)
        ck = h.candidate.candidate_key if h.candidate else None
        s.add(AuditEvent(kind="subject_export", subject_ref=f"candidate:{ck}" if ck else "subject:unmatched",
                         actor=operator, detail={**h.counts(), "file": str(out)}))
    return {"candidate_key": ck, **h.counts(), "file": str(out), "unreadable_staging": h.unreadable_staging}


def export_doc(s, keys: Keyring, h: Holdings) -> dict:
    cand = h.candidate
    by_result: dict[int, list] = {}
    for o, _ in h.outbox:
        by_result.setdefault(o.result_id, []).append(o)
    return {
        "candidate": {"candidate_key": cand.candidate_key, "created_at": cand.created_at.isoformat(),
                      **h.person_fields} if cand else None,
        "vendor_ids": [{"vendor": v.vendor, "vendor_candidate_id": v.vendor_candidate_id} for v in h.vendor_ids],
        "interview_results": [_result_doc(keys, r, h, by_result.get(r.id, [])) for r in h.results],
        "status_events": [_columns(e) for e in h.status_events],
        "raw_payloads": [{"id": raw.id, "source": raw.source, "vendor_result_id": raw.vendor_result_id,
                          "received_at": raw.received_at, "payload": payload}
                         for raw, payload in h.raw_payloads.values()],
        "quarantine": [_columns(q) for q in h.quarantine],
        "lineage": [_columns(lin) for lin in h.lineage],
        "identity_reviews": [_columns(r) for r in h.identity_reviews],
        "inbox": [{"source": row.source, "delivery_id": row.delivery_id, "status": row.status,
                   "received_at": row.received_at, "payload": payload} for row, payload in h.inbox],
        "outbox": [{**_columns(o, skip={"payload_enc"}), "body": body} for o, body in h.outbox],
        "staging": [{"run_id": st.run_id, "files": found} for st, found in h.staging],
    }


def _columns(row, skip: frozenset | set = frozenset()) -> dict:
    return {c.name: getattr(row, c.name) for c in row.__table__.columns if c.name not in skip}


def _result_doc(keys: Keyring, r: InterviewResult, h: Holdings, deliveries: list) -> dict:
    doc = _columns(r, skip={"id", "candidate_id", "video_url_enc"})
    if r.video_url_enc:
        doc["video_url"] = keys.decrypt(r.video_url_enc, f"interview_results.video_url:{r.vendor}:{r.vendor_result_id}")
    doc["dimensions"] = [{"code": d.code, "name": d.name, "score": d.score, "raw_score": d.raw_score,
                          "scale": d.scale, "comment": d.comment} for d in h.dimensions if d.result_id == r.id]
    linked = {lin.raw_payload_id for lin in h.lineage if lin.result_id == r.id}
    doc["vendor_payloads"] = [payload for raw_id, (_, payload) in h.raw_payloads.items() if raw_id in linked]
    doc["deliveries"] = [{"target": o.target, "status": o.status, "sent_at": o.sent_at, "target_ref": o.target_ref}
                         for o in deliveries]
    return doc


def _write_private(out: Path, doc: dict) -> None:
    """A new file only its owner can read: never an existing file (it keeps its mode, others may hold
    it open) and never through a symlink (it could point anywhere). JSON, not a spreadsheet: an export
    as a table would go through hiresync.privacy.cells.write_table (formula-like cells neutralised)."""
    try:
        fd = create_private(out)
    except HireSyncError:
        raise HireSyncError(f"{out} exists: an export is written to a new file only (choose another name)") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=2, default=str)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


# -- erase ---------------------------------------------------------------------------------------------
def erase(settings: Settings, keys: Keyring, national_id: str, operator: str) -> dict:
    """Remove exactly what `export` would write, in one transaction (staging folders holding the person
    after it commits), and queue a deletion request to every target the person's outbox history names."""
    now = datetime.now(timezone.utc)
    with transaction(settings.hub_url) as s:
        h = find_holdings(s, settings, keys, national_id)
        if h.candidate is None and h.empty():
            find_candidate(s, keys, national_id)  # raises: the hub holds nothing on them
        cand = h.candidate
        result_ids = [r.id for r in h.results]
        raw_ids = list(h.raw_payloads)
        # The delivery history says who received them, whatever sources.yaml says today.
        targets = sorted({o.target for o, _ in h.outbox})
        refs: dict[str, list[str]] = {}
        for o, _ in h.outbox:
            if o.target_ref and o.status == "sent":
                refs.setdefault(o.target, []).append(o.target_ref)
        result_keys = sorted({f"{r.vendor}:{r.vendor_result_id}" for r in h.results}
                             | {f"{o_body['result']['result_key']}" for _, o_body in h.outbox
                                if isinstance(o_body, dict) and isinstance(o_body.get("result"), dict)
                                and o_body["result"].get("result_key")})

        _delete_ids(s, StatusEvent, [e.id for e in h.status_events])
        for chunk in _chunks(sorted({d.result_id for d in h.dimensions})):
            s.execute(delete(DimensionScore).where(DimensionScore.result_id.in_(chunk)))
        # Outbox: what never went out must never go now; what went out stays as a value-free record.
        unsent = [o.id for o, _ in h.outbox if o.status != "sent"]
        sent = [(o.id, o.idempotency_key) for o, _ in h.outbox if o.status == "sent"]
        _delete_ids(s, Outbox, unsent)
        for oid, idem in sent:
            s.execute(update(Outbox).where(Outbox.id == oid).values(
                payload_enc=None, result_id=None, raw_payload_id=None, target_ref=None, last_error=None,
                status="erased", claimed_by=None, claimed_until=None,
                idempotency_key=hashlib.sha256(f"erased|{idem}".encode()).hexdigest()))
        _delete_ids(s, RecordLineage, [lin.id for lin in h.lineage])
        _delete_ids(s, Quarantine, [q.id for q in h.quarantine])
        for chunk in _chunks(raw_ids):
            s.execute(update(RawPayload).where(RawPayload.id.in_(chunk)).values(payload_enc=None, purged_at=now))
        _delete_ids(s, IdentityReview, [r.id for r in h.identity_reviews])
        _delete_ids(s, InterviewResult, result_ids)
        _delete_ids(s, InboxDelivery, [row.id for row, _ in h.inbox])
        if cand is not None:
            s.execute(delete(CandidateVendorId).where(CandidateVendorId.candidate_id == cand.id))
            s.execute(delete(PerformanceRating).where(PerformanceRating.candidate_id == cand.id))
            s.delete(cand)
        ck = cand.candidate_key if cand else None
        if ck and targets:  # nobody received anything of this person: nobody to ask
            s.execute(insert(Outbox.__table__), [
                dict(target=t, kind="erase", result_id=None, result_version=0, status="pending",
                     run_id=f"erase:{operator}",
                     idempotency_key=(idem := hashlib.sha256(f"erase|{t}|{ck}".encode()).hexdigest()),
                     payload_enc=keys.encrypt(jsonfast.dumpb({"candidate_key": ck, "result_keys": result_keys,
                                                             "target_refs": refs.get(t, [])}), f"outbox:{t}:{idem}"))
                for t in targets])
        counts = h.counts()
        s.add(AuditEvent(kind="subject_erase", subject_ref=f"candidate:{ck}" if ck else "subject:unmatched",
                         actor=operator, detail={**counts, "erase_requests": targets,
                                                 "unreadable_staging": len(h.unreadable_staging)}))
    for staging, _ in h.staging:
        # A run left behind (or still running: it fails and its source is pulled again, nothing is
        # lost, as a run's watermark, inbox and file marks move only when it loads).
        staging.remove()
    for where in h.unreadable_staging:
        log.warning("subject erase: %s could not be read (no run id for it): check and remove it", where)
    return {"candidate_key": ck, **counts, "erase_requests": targets, "unreadable_staging": h.unreadable_staging}


def _chunks(ids: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _delete_ids(s, model, ids: list) -> None:
    for chunk in _chunks(ids):
        s.execute(delete(model).where(model.id.in_(chunk)))
