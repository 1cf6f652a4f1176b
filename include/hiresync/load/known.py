"""Payloads the hub has already taken, byte for byte, under the same mapping.

Every incremental run re-reads an overlap window, and a re-run or backfill re-reads whole
windows: most of what such a run pulls is payloads the hub loaded before. A payload whose hash
the record lineage shows as loaded under the current mapping version, with the spec unchanged
since (same fingerprint), cannot give a different answer: it skips the contract and the mapping
and is accounted as unchanged (or stale, if the hub has moved on to a newer version of the
result). Likewise a payload still held by an open quarantine row is accounted as quarantined
again without a second row, unless its reason can change with time or with the hub's state
(FUTURE, MINOR, identity conflicts): those are judged again. So a no-change run costs a few
lookups, not a Great Expectations import and a full validation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hiresync.hub.models import MappingVersion, Quarantine, RawPayload, RecordLineage
from hiresync.mapping.spec import MappingSpec
from hiresync.hub.bulk import one_of

LOADED = ("inserted", "updated", "unchanged", "stale", "superseded")
# Reasons that a later run may judge differently: time passes, a person resolves an identity review.
REJUDGE = {"FUTURE", "FUTURE_CURSOR", "MINOR", "NAME_MISMATCH", "ID_MISMATCH"}
CHUNK = 1000


@dataclass(frozen=True)
class Known:
    result_id: int | None
    # "unchanged" (it is what the hub holds now), "stale" (the hub holds a newer version) or
    # "quarantined" (an open quarantine row holds it already)
    outcome: str


def mapping_unchanged(s: Session, mapping: MappingSpec) -> bool:
    """Every spec recorded under this version is the spec in use: skipping is safe. A spec edited
    without a version bump makes its lineage ambiguous, so nothing is skipped for that version
    (bump the version and payloads are judged once under the new one, then skipped again)."""
    recorded = set(s.scalars(select(MappingVersion.fingerprint).where(
        MappingVersion.mapping == mapping.name, MappingVersion.version == mapping.version)))
    return recorded == {mapping.fingerprint}


def known_payloads(s: Session, source: str, mapping: MappingSpec, keyed: list[tuple[str, str]]) -> dict[str, Known]:
    """payload hash -> Known, for the (vendor result id, payload hash) pairs the hub has loaded."""
    wanted = {h for _, h in keyed}
    keys = sorted({k for k, _ in keyed if k})
    seen: dict[str, Known] = {}
    for i in range(0, len(keys), CHUNK):
        rows = s.execute(
            select(RecordLineage.vendor_result_id, RecordLineage.payload_hash, RecordLineage.result_id,
                   RecordLineage.outcome, RecordLineage.mapping_version)
            .where(RecordLineage.source == source, one_of(RecordLineage.vendor_result_id, keys[i:i + CHUNK]))
            .order_by(RecordLineage.id)).all()
        current: dict[str, str] = {}  # vendor result id -> hash of the payload its stored version came from
        result_of: dict[str, int] = {}
        good: set[str] = set()
        bad: set[str] = set()
        for key, digest, result_id, outcome, version in rows:  # oldest first: the last word counts
            if outcome in ("inserted", "updated"):
                current[key] = digest
            if result_id is not None:
                result_of[key] = result_id
            if digest not in wanted:
                continue
            good.discard(digest)
            bad.discard(digest)
            if version == mapping.version:
                (good if outcome in LOADED else bad if outcome == "quarantined" else set()).add(digest)
        by_hash = {h: k for k, h in keyed}
        for digest in good:
            key = by_hash[digest]
            seen[digest] = Known(result_of.get(key), "unchanged" if current.get(key) == digest else "stale")
        if bad:
            seen.update((digest, Known(None, "quarantined")) for digest in _still_quarantined(s, source, keys[i:i + CHUNK], bad))
    return seen


def _still_quarantined(s: Session, source: str, keys: list[str], hashes: set[str]) -> set[str]:
    """Of these payloads, those an open quarantine row holds for a reason time cannot change."""
    rows = s.execute(
        select(RawPayload.payload_hash, Quarantine.problems)
        .join(RawPayload, RawPayload.id == Quarantine.raw_payload_id)
        .where(Quarantine.source == source, Quarantine.status == "open", one_of(Quarantine.vendor_result_id, keys))).all()
    held: set[str] = set()
    rejudge: set[str] = set()
    for digest, problems in rows:
        if digest in hashes:
            (rejudge if any(p.get("rule") in REJUDGE for p in problems or []) else held).add(digest)
    return held - rejudge
