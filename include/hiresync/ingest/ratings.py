"""Performance ratings (绩效) from the EHR: a source of their own, as a file drop.

Each .csv / .xlsx file in the drop folder (default var/drops/performance/) has the header row
`resident_id,candidate_key,period,rating`; per row either the employee's resident ID or HireSync's
candidate key, the period (2026, 2026-H1, 2026-Q3 or 2026-07) and the rating on RATING_MIN..RATING_MAX.

- A file is read once (its content hash, table file_drops, source "performance").
- The person is matched by blind index (resident ID) or candidate key; the ID number is not kept.
- The rating is stored encrypted (performance_ratings.rating_enc); a later file for the same
  candidate and period replaces it.
- A bad row (unknown person, bad ID, bad period, rating out of range) is quarantined with the field
  and the rule, never the value; its row is kept encrypted like any raw payload.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update

from connectors.files.reader import FileProblem, read_rows
from hiresync import jsonfast
from hiresync.config.settings import Settings
from hiresync.errors import HireSyncError
from hiresync.hub.models import Candidate, FileDrop, PerformanceRating, Quarantine, RawPayload
from hiresync.hub.store import transaction
from hiresync.privacy.identifiers import national_id_problem, normalize_national_id
from hiresync.privacy.keys import hub_keys
from hiresync.privacy.pii import mask_national_id
from hiresync.privacy.payloads import seal

SOURCE = "performance"
COLUMNS = {"resident_id": "resident_id", "candidate_key": "candidate_key", "period": "period", "rating": "rating"}
RATING_MIN, RATING_MAX = 1.0, 5.0
_PERIOD = re.compile(r"^(20\d{2})(-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?$")


@dataclass
class ImportResult:
    files: int = 0
    rows: int = 0
    loaded: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    skipped_files: list[str] = field(default_factory=list)  # read before: same content


def drop_folder(settings: Settings) -> Path:
    return settings.var_dir / "drops" / SOURCE


def rating_context(candidate_key: str, period: str) -> str:
    return f"performance_ratings.rating:{candidate_key}:{period}"


def import_drop(settings: Settings, folder: Path | None = None) -> ImportResult:
    folder = Path(folder or drop_folder(settings))
    if not folder.is_dir():
        raise HireSyncError(f"source {SOURCE}: drop folder {folder} does not exist")
    out = ImportResult()
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".xlsx")):
        _import_file(settings, path, out)
    return out


def _import_file(settings: Settings, path: Path, out: ImportResult) -> None:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        rows = read_rows(path, data, COLUMNS)
    except FileProblem as exc:
        raise HireSyncError(f"source {SOURCE}: {exc}") from None
    keys = hub_keys(settings)
    run_id = f"{SOURCE}:{digest[:16]}"
    with transaction(settings.hub_url) as s:
        if s.scalar(select(FileDrop.id).where(FileDrop.source == SOURCE, FileDrop.content_hash == digest)):
            out.skipped_files.append(path.name)
            return
        drop = FileDrop(source=SOURCE, file_name=path.name[:255], content_hash=digest, rows=len(rows), run_id=run_id)
        s.add(drop)
        s.flush()
        out.files += 1
        for number, row in rows:
            out.rows += 1
            cand, period, rating, problems = _check(s, keys, row)
            if problems:
                _quarantine(s, keys, run_id, f"{path.name}#{number}", row, problems)
                out.quarantined += 1
                code = problems[0]["rule"]
                out.reasons[code] = out.reasons.get(code, 0) + 1
                continue
            token = keys.encrypt(f"{rating:g}", rating_context(cand.candidate_key, period))
            have = s.scalar(select(PerformanceRating.id).where(PerformanceRating.candidate_id == cand.id,
                                                               PerformanceRating.period == period))
            if have:
                s.execute(update(PerformanceRating).where(PerformanceRating.id == have)
                          .values(rating_enc=token, file_drop_id=drop.id))
            else:
                s.add(PerformanceRating(candidate_id=cand.id, period=period, rating_enc=token, file_drop_id=drop.id))
            s.flush()
            out.loaded += 1


def _check(s, keys, row: dict):
    problems: list[dict] = []
    resident, ckey = _text(row.get("resident_id")), _text(row.get("candidate_key"))
    cand = None
    if resident:
        rule = national_id_problem(resident)
        if rule:
            problems.append({"field": "resident_id", "rule": rule, "value": _masked_id(resident)})
        else:
            cand = s.scalars(select(Candidate).where(Candidate.national_id_bidx.in_(
                keys.blind_indexes(normalize_national_id(resident), "national_id")))).first()
            if cand is None:
                problems.append({"field": "resident_id", "rule": "UNKNOWN_PERSON", "value": _masked_id(resident)})
    elif ckey:
        cand = s.scalars(select(Candidate).where(Candidate.candidate_key == ckey)).first()
        if cand is None:
            problems.append({"field": "candidate_key", "rule": "UNKNOWN_PERSON", "value": "***"})
    else:
        problems.append({"field": "resident_id", "rule": "NOT_NULL", "value": "null"})
    period = _text(row.get("period")).upper().replace("年", "")
    if not _PERIOD.match(period):
        problems.append({"field": "period", "rule": "PERIOD_FORMAT", "value": "***"})
    rating = None
    try:
        rating = float(_text(row.get("rating")))
        if not RATING_MIN <= rating <= RATING_MAX:
            problems.append({"field": "rating", "rule": "RANGE", "value": "***"})
    except ValueError:
        problems.append({"field": "rating", "rule": "NOT_A_NUMBER", "value": "***"})
    return cand, period, rating, problems


def _quarantine(s, keys, run_id: str, ref: str, row: dict, problems: list[dict]) -> None:
    payload = {k: (None if v is None else str(v)) for k, v in row.items()}
    digest = hashlib.sha256(jsonfast.dumpb(payload, sort_keys=True)).hexdigest()
    raw = s.scalars(select(RawPayload).where(RawPayload.source == SOURCE, RawPayload.vendor_result_id == ref,
                                             RawPayload.payload_hash == digest)).first()
    if raw is None:
        raw = RawPayload(source=SOURCE, vendor_result_id=ref, payload_hash=digest, run_id=run_id,
                         payload_enc=seal(keys, SOURCE, digest, jsonfast.dumpb(payload), dictionary=None))
        s.add(raw)
        s.flush()
    s.add(Quarantine(run_id=run_id, source=SOURCE, vendor_result_id=ref, raw_payload_id=raw.id,
                     reason_code=problems[0]["rule"], problems=problems))


def _masked_id(value: str) -> str:
    v = normalize_national_id(value)
    return mask_national_id(v) if len(v) >= 8 else "***"


def _text(v) -> str:
    return "" if v is None else str(v).strip()


def ratings_by_candidate(s, keys) -> list[tuple[int, str, float]]:
    """(candidate id, period, rating) of every stored rating, decrypted for the analytics."""
    rows = s.execute(select(PerformanceRating.candidate_id, Candidate.candidate_key, PerformanceRating.period,
                            PerformanceRating.rating_enc).join(Candidate, Candidate.id == PerformanceRating.candidate_id)
                     ).all()
    return [(cid, period, float(keys.decrypt(enc, rating_context(ck, period)))) for cid, ck, period, enc in rows]
