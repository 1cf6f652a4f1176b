"""Identity resolution: which candidate a result belongs to, without ever merging on a guess.

One person takes interviews with several vendors and retakes them; HR wants one candidate. A
result is matched by the blind index of its resident ID (under every key version, so a key
rotation in progress changes nothing). A new ID whose phone AND email both belong to an existing
candidate, or a known ID arriving with another name, is a conflict: the result is quarantined and a
review is opened (`hiresync identity review`), and a person decides. The decision is applied when
the result is replayed (`hiresync quarantine replay`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hiresync.privacy import pii
from hiresync.errors import HireSyncError
from hiresync.hub.bulk import insert_rows, lookup, one_of
from hiresync.hub.models import Candidate, CandidateVendorId, IdentityReview
from hiresync.hub.store import transaction
from hiresync.privacy.pii import Keyring
from hiresync.config.settings import Settings


@dataclass(frozen=True)
class Conflict:
    kind: str            # NAME_MISMATCH or ID_MISMATCH
    candidate_id: int    # the existing candidate it collided with
    field: str
    details: dict        # masked values only


class IdentityResolver:
    def __init__(self, session: Session, keys: Keyring, source: str, vendor: str):
        self.s, self.keys, self.source, self.vendor = session, keys, source, vendor
        self._bidx: dict[str, str] = {}

    def national_id_index(self, record: dict) -> str:
        """The record's national-ID blind index (active key), computed once per distinct ID."""
        return self._index_of(record["candidate"])

    def _index_of(self, candidate: dict) -> str:
        nid = candidate["national_id"]
        if nid not in self._bidx:
            self._bidx[nid] = self.keys.blind_index(nid, "national_id")
        return self._bidx[nid]

    def resolve(self, items: list[tuple[str, dict]]) -> tuple[dict[str, tuple[int, str]], dict[str, Conflict]]:
        """(national-ID index -> (candidate id, candidate key), result key -> conflict).

        Records with a conflict get no candidate; everyone else is found or created. Every record
        is judged, not only the newest of its resident ID: one batch can hold several results of
        one person (retakes, a change feed), and one of them arriving with another name holds back
        that one, not the others."""
        self._bidx.clear()  # a per-batch cache: across a million-result run it would hold every ID
        decisions = self._decisions([key for key, _ in items])
        by_id: dict[str, list[tuple[str, dict]]] = {}  # national-ID index -> its records, oldest first
        for key, rec in sorted(items, key=lambda kr: kr[1]["result"]["source_updated_at"]):
            by_id.setdefault(self.national_id_index(rec), []).append((key, rec["candidate"]))
        newest = {b: group[-1] for b, group in by_id.items()}
        variants = {b: active for active, (_, cand) in newest.items()
                    for b in self.keys.blind_indexes(cand["national_id"], "national_id")}
        found: dict[str, tuple[int, str]] = {}
        conflicts: dict[str, Conflict] = {}
        known: set[str] = set()  # IDs the hub holds a candidate for
        for b, cid, ck, name_enc in lookup(self.s, (Candidate.national_id_bidx, Candidate.id, Candidate.candidate_key,
                                                    Candidate.full_name_enc), Candidate.national_id_bidx, variants):
            active = variants[b]
            known.add(active)
            stored = self.keys.decrypt(name_enc, f"candidates.full_name:{ck}")
            self._check_names(by_id[active], stored, cid, decisions, conflicts)
            if any(key not in conflicts for key, _ in by_id[active]):
                found[active] = (cid, ck)

        new = {b: kc for b, kc in newest.items() if b not in known}
        for b, other in self._same_contacts(new).items():
            key, cand = new[b]
            decision = decisions.get(key)
            if decision is None:
                conflict = Conflict("ID_MISMATCH", other[0], "candidate.national_id", {
                    "incoming_national_id": pii.mask_national_id(cand["national_id"]),
                    "mobile": pii.mask_mobile(cand["mobile"]), "email": pii.mask_email(cand["email"])})
                conflicts.update((k, conflict) for k, _ in by_id[b])  # the ID is in doubt for all its records
            elif decision.resolution == "same_person":
                found[b] = other  # the vendor had a wrong ID; the person already exists

        created = {b: cand for b, (key, cand) in new.items() if b not in found and key not in conflicts}
        if created:
            insert_rows(self.s, Candidate.__table__, [self._candidate_row(b, cand) for b, cand in created.items()])
            for b, i, k in lookup(self.s, (Candidate.national_id_bidx, Candidate.id, Candidate.candidate_key),
                                  Candidate.national_id_bidx, created):
                found[b] = (i, k)
                # Older records of a new person in this batch are judged against the newest one's name.
                self._check_names(by_id[b][:-1], created[b]["full_name"], i, decisions, conflicts)
        self._link_vendor_ids([(key, cand) for group in by_id.values() for key, cand in group
                               if key not in conflicts], found)
        return found, conflicts

    def _check_names(self, records: list[tuple[str, dict]], stored: str, candidate_id: int,
                     decisions: dict, conflicts: dict[str, Conflict]) -> None:
        """A known resident ID arriving with another name is a conflict, unless a person decided it
        is the same person."""
        for key, cand in records:
            decision = decisions.get(key)
            if not _same_name(stored, cand["full_name"]) and not (decision and decision.resolution == "same_person"):
                conflicts[key] = Conflict("NAME_MISMATCH", candidate_id, "candidate.full_name", {
                    "stored_name": pii.mask_name(stored), "incoming_name": pii.mask_name(cand["full_name"]),
                    "national_id": pii.mask_national_id(cand["national_id"])})

    def open_reviews(self, run_id: str, conflicts: dict[str, Conflict]) -> None:
        """One open review per result; a re-pull of a result already under review adds none."""
        if not conflicts:
            return
        pending = set(self.s.scalars(select(IdentityReview.vendor_result_id).where(
            IdentityReview.source == self.source, IdentityReview.status == "open",
            one_of(IdentityReview.vendor_result_id, list(conflicts)))))
        rows = [dict(kind=c.kind, source=self.source, vendor_result_id=key, candidate_id=c.candidate_id,
                     details={**c.details, "run_id": run_id}, status="open")
                for key, c in conflicts.items() if key not in pending]
        if rows:
            self.s.execute(insert(IdentityReview.__table__), rows)

    # -- internals -------------------------------------------------------------------------------
    def _decisions(self, keys: list[str]) -> dict[str, IdentityReview]:
        return {r.vendor_result_id: r for r in self.s.scalars(select(IdentityReview).where(
            IdentityReview.source == self.source, IdentityReview.status == "resolved",
            one_of(IdentityReview.vendor_result_id, keys)).order_by(IdentityReview.id))}

    def _same_contacts(self, new: dict[str, tuple[str, dict]]) -> dict[str, tuple[int, str]]:
        """New IDs whose phone and email both belong to one existing candidate."""
        wanted = {b: (self.keys.blind_indexes(c["mobile"], "mobile"), self.keys.blind_indexes(c["email"], "email"))
                  for b, (_, c) in new.items() if c.get("mobile") and c.get("email")}
        if not wanted:
            return {}
        mobiles = [m for ms, _ in wanted.values() for m in ms]
        rows = lookup(self.s, (Candidate.id, Candidate.candidate_key, Candidate.mobile_bidx, Candidate.email_bidx),
                      Candidate.mobile_bidx, mobiles)
        out = {}
        for b, (ms, es) in wanted.items():
            hit = next(((i, k) for i, k, mobile, email in rows if mobile in ms and email in es), None)
            if hit:
                out[b] = hit
        return out

    def _candidate_row(self, bidx: str, cand: dict) -> dict:
        key = str(uuid.uuid4())
        row = dict(candidate_key=key, key_version=self.keys.active, national_id_bidx=bidx,
                   national_id_enc=self._enc(cand["national_id"], "national_id", key),
                   national_id_masked=pii.mask_national_id(cand["national_id"]),
                   full_name_enc=self._enc(cand["full_name"], "full_name", key),
                   full_name_masked=pii.mask_name(cand["full_name"]))
        for col, mask in (("mobile", pii.mask_mobile), ("email", pii.mask_email)):
            value = cand.get(col)
            row.update({f"{col}_enc": self._enc(value, col, key) if value else None,
                        f"{col}_bidx": self.keys.blind_index(value, col) if value else None,
                        f"{col}_masked": mask(value) if value else None})
        return row

    def _enc(self, value: str, column: str, candidate_key: str) -> str:
        return self.keys.encrypt(value, f"candidates.{column}:{candidate_key}")

    def _link_vendor_ids(self, records: list[tuple[str, dict]], found: dict[str, tuple[int, str]]) -> None:
        """(result key, candidate part) pairs: each vendor candidate id points at its candidate."""
        pairs = {cand["vendor_candidate_id"]: found[self._index_of(cand)][0]
                 for _, cand in records if cand.get("vendor_candidate_id")}
        known = {v for (v,) in lookup(self.s, (CandidateVendorId.vendor_candidate_id,),
                                      CandidateVendorId.vendor_candidate_id, pairs, vendor=self.vendor)}
        new = [dict(vendor=self.vendor, vendor_candidate_id=v, candidate_id=c) for v, c in pairs.items() if v not in known]
        if new:
            insert_rows(self.s, CandidateVendorId.__table__, new)


def _same_name(a: str, b: str) -> bool:
    # Vendors space Chinese names differently ("王芳", "王 芳") and Latin ones by case.
    return "".join(a.split()).casefold() == "".join(b.split()).casefold()


# -- the review queue ----------------------------------------------------------------------------
def list_reviews(settings: Settings, status: str = "open") -> list[dict]:
    with transaction(settings.hub_url) as s:
        return [{"id": r.id, "kind": r.kind, "source": r.source, "vendor_result_id": r.vendor_result_id,
                 "candidate_id": r.candidate_id, "details": r.details, "status": r.status,
                 "resolution": r.resolution, "created_at": r.created_at.isoformat()}
                for r in s.scalars(select(IdentityReview).where(IdentityReview.status == status)
                                   .order_by(IdentityReview.id))]


def resolve_review(settings: Settings, review_id: int, same_person: bool, operator: str) -> dict:
    with transaction(settings.hub_url) as s:
        review = s.get(IdentityReview, review_id)
        if review is None:
            raise HireSyncError(f"there is no identity review {review_id}")
        if review.status != "open":
            raise HireSyncError(f"identity review {review_id} was already resolved ({review.resolution})")
        if review.kind == "NAME_MISMATCH" and not same_person:
            raise HireSyncError(f"review {review_id}: one resident ID is one person; if the vendor sent a wrong ID, "
                                "fix it at the vendor and let the result stay in quarantine")
        review.status, review.resolution = "resolved", "same_person" if same_person else "different_person"
        review.resolved_by, review.resolved_at = operator, datetime.now(timezone.utc)
        return {"id": review.id, "source": review.source, "vendor_result_id": review.vendor_result_id,
                "resolution": review.resolution}
