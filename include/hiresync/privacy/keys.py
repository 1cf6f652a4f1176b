"""Key rotation: re-encrypt and re-index the hub under the active key version, batch by batch.

Each batch is its own short transaction, so syncs keep running during a rotation; they match
candidates by the blind index of every known key version (see load.resolve_candidates) until the
last row is re-keyed. Old key versions must stay in the keyring until `hiresync keys status`
shows nothing left on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hiresync.privacy import pii
from hiresync.errors import KeyMaterialError
from hiresync.hub.models import Candidate, InboxDelivery, InterviewResult, KeyVersionCheck, Outbox, RawPayload
from hiresync.hub.store import transaction
from hiresync.config.settings import Settings


def inbox_context(source: str, delivery_id: str) -> str:
    """Associated data of an inbox payload: bound to its source and delivery id."""
    return f"inbox:{source}:{delivery_id}"


@dataclass(frozen=True)
class EncryptedColumn:
    model: type
    column: str
    context: Callable[[object], str]  # the associated data the value was encrypted with


# Every encrypted column outside `candidates` (which also carries blind indexes, handled apart).
COLUMNS = (
    EncryptedColumn(RawPayload, "payload_enc", lambda r: f"raw_payloads:{r.source}:{r.payload_hash}"),
    EncryptedColumn(InterviewResult, "video_url_enc", lambda r: f"interview_results.video_url:{r.vendor}:{r.vendor_result_id}"),
    EncryptedColumn(Outbox, "payload_enc", lambda r: f"outbox:{r.target}:{r.idempotency_key}"),
    EncryptedColumn(InboxDelivery, "payload_enc", lambda r: inbox_context(r.source, r.delivery_id)),
)
CANDIDATE_PII = (("full_name", None), ("national_id", "national_id_bidx"), ("mobile", "mobile_bidx"),
                 ("email", "email_bidx"))


def hub_keys(settings: Settings) -> pii.Keyring:
    """The keyring, checked against the fingerprints this hub recorded: a wrong key stops here,
    before it writes data nobody can read or misses every blind-index match. New versions are
    recorded; a first run records what it has."""
    keys = pii.Keyring.load(settings.key_file)
    mine = keys.fingerprints()
    for attempt in (1, 2):
        try:
            with transaction(settings.hub_url) as s:
                known = dict(s.execute(select(KeyVersionCheck.version, KeyVersionCheck.fingerprint)).all())
                wrong = sorted(v for v, fp in known.items() if v in mine and mine[v] != fp)
                if wrong or (known and not set(known) & set(mine)):
                    raise KeyMaterialError(
                        f"the encryption key does not belong to this hub (key version {wrong[0] if wrong else keys.active} "
                        f"differs from the one its data was written with): wrong key file or HIRESYNC_KEYS? "
                        f"Nothing was touched.")
                for v in sorted(set(mine) - set(known)):
                    s.add(KeyVersionCheck(version=v, fingerprint=mine[v]))
            return keys
        except IntegrityError:
            # Two first runs (two DAGs starting together on a new hub) recorded the same version at
            # once: look again, which also tells whether the other one had the same key.
            if attempt == 2:
                raise
    return keys


def rotate(settings: Settings, keys: pii.Keyring, batch_size: int = 500, max_batches: int | None = None,
           progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Re-key everything not on `keys.active`; returns rows re-keyed per table."""
    done = {"candidates": 0}
    batches = 0
    while max_batches is None or batches < max_batches:
        n = _rekey_candidates(settings, keys, batch_size)
        if not n:
            break
        done["candidates"] += n
        batches += 1
        if progress:
            progress("candidates", done["candidates"])
    for col in COLUMNS:
        name = col.model.__tablename__
        done[name] = 0
        while max_batches is None or batches < max_batches:
            n = _rekey_column(settings, keys, col, batch_size)
            if not n:
                break
            done[name] += n
            batches += 1
            if progress:
                progress(name, done[name])
    return done


def status(settings: Settings, keys: pii.Keyring) -> dict[str, dict]:
    """Rows per key version, per table: what a rotation still has to do."""
    out = {}
    with transaction(settings.hub_url) as s:
        out["candidates"] = {str(v): n for v, n in s.execute(
            select(Candidate.key_version, func.count()).group_by(Candidate.key_version)).all()}
        for col in COLUMNS:
            column = getattr(col.model, col.column)
            on_active = s.scalar(select(func.count()).select_from(col.model).where(
                column.like(f"v{keys.active}:%")))
            total = s.scalar(select(func.count()).select_from(col.model).where(column.is_not(None)))
            out[col.model.__tablename__] = {"active": on_active, "older": total - on_active}
    out["active_version"] = keys.active
    return out


def _rekey_candidates(settings: Settings, keys: pii.Keyring, batch_size: int) -> int:
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(Candidate).where(Candidate.key_version != keys.active)
                         .order_by(Candidate.id).limit(batch_size).with_for_update(skip_locked=True)).all()
        for row in rows:
            for field, bidx in CANDIDATE_PII:
                token = getattr(row, f"{field}_enc")
                if token is None:
                    continue
                context = f"candidates.{field}:{row.candidate_key}"
                value = keys.decrypt(token, context)
                setattr(row, f"{field}_enc", keys.encrypt(value, context))
                if bidx:
                    setattr(row, bidx, keys.blind_index(value))
            row.key_version = keys.active
        return len(rows)


def _rekey_column(settings: Settings, keys: pii.Keyring, col: EncryptedColumn, batch_size: int) -> int:
    column = getattr(col.model, col.column)
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(col.model).where(column.is_not(None), column.not_like(f"v{keys.active}:%"))
                         .order_by(col.model.id).limit(batch_size).with_for_update(skip_locked=True)).all()
        for row in rows:
            context = col.context(row)
            plain = keys.decrypt(getattr(row, col.column), context)
            setattr(row, col.column, keys.encrypt(plain, context, compress=col.column == "payload_enc"))
        return len(rows)
