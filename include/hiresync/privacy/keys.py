"""Key rotation: re-encrypt and re-index the hub under the active key version, batch by batch.

Each batch is its own short transaction, so syncs keep running during a rotation; they match
candidates by the blind index of every known key version (see load.resolve_candidates) until the
last row is re-keyed. Old key versions must stay in the keyring until `hiresync keys status`
shows nothing left on them.

Blind indexes have a key of their own per field (pii.Keyring.blind_index). Hubs from before that
(migration 0014 marks their candidates `bidx_scheme` 1) are re-indexed once, by `hub_keys`, at the
start of the first sync after the upgrade: see `reindex_blind_indexes`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from hiresync.privacy import payloads, pii
from hiresync.errors import KeyMaterialError
from hiresync.hub.models import (BLIND_INDEX_SCHEME, Candidate, InboxDelivery, InterviewResult, KeyVersionCheck,
                                 Outbox, RawPayload)
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
    EncryptedColumn(RawPayload, "payload_enc", lambda r: payloads.context(r.source, r.payload_hash)),
    EncryptedColumn(InterviewResult, "video_url_enc", lambda r: f"interview_results.video_url:{r.vendor}:{r.vendor_result_id}"),
    EncryptedColumn(Outbox, "payload_enc", lambda r: f"outbox:{r.target}:{r.idempotency_key}"),
    EncryptedColumn(InboxDelivery, "payload_enc", lambda r: inbox_context(r.source, r.delivery_id)),
)
CANDIDATE_PII = (("full_name", None), ("national_id", "national_id_bidx"), ("mobile", "mobile_bidx"),
                 ("email", "email_bidx"))
REINDEX_BATCH = 500

log = logging.getLogger(__name__)


def hub_keys(settings: Settings) -> pii.Keyring:
    """The keyring, checked against the fingerprints this hub recorded: a wrong key stops here,
    before it writes data nobody can read or misses every blind-index match. New versions are
    recorded; a first run records what it has. Then candidates still indexed the pre-0014 way are
    re-indexed (once per hub; see `upgrade_blind_indexes`)."""
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
            break
        except IntegrityError:
            # Two first runs (two DAGs starting together on a new hub) recorded the same version at
            # once: look again, which also tells whether the other one had the same key.
            if attempt == 2:
                raise
    upgrade_blind_indexes(settings, keys)
    return keys


def upgrade_blind_indexes(settings: Settings, keys: pii.Keyring) -> int:
    """Re-index the candidates whose blind indexes are still in the one-key-for-every-field form
    (`bidx_scheme` below BLIND_INDEX_SCHEME: every candidate of a hub upgraded past migration 0014)
    and tell `keys` whether any are left. Returns how many this call re-indexed.

    Why batches and not one transaction: a big hub would hold every candidate row locked (SQLite:
    the whole database) for minutes while syncs wait. So each batch is its own short transaction,
    and until the last row is done `keys.match_legacy_blind_indexes` makes every lookup also try the
    old form: a returning candidate is found either way, never created twice (which would also make
    the re-index of the old row collide with the new row on the unique national-ID index).
    - Interrupted (a crash, a killed task): committed batches stay done, the rest keeps scheme 1 and
      the next hub_keys, in any process, carries on. Nothing is ever half a row.
    - Two processes at once: server databases hand each one other rows (SKIP LOCKED); on SQLite both
      may read the same rows, but every row is written only if it is still on the old scheme and
      on the key version it was read with, so the second writer changes nothing (nor can it undo a
      rotation that re-keyed the row meanwhile). A process that finds rows left which another
      holds keeps matching the old form too.
    Once none is left this is one indexed look-up per call."""
    with transaction(settings.hub_url) as s:
        pending = s.scalar(select(Candidate.id).where(Candidate.bidx_scheme < BLIND_INDEX_SCHEME).limit(1))
    if pending is None:
        keys.match_legacy_blind_indexes = False
        return 0
    keys.match_legacy_blind_indexes = True  # from here on, until the check below says none are left
    done = reindex_blind_indexes(settings, keys)
    with transaction(settings.hub_url) as s:
        left = s.scalar(select(func.count()).select_from(Candidate).where(Candidate.bidx_scheme < BLIND_INDEX_SCHEME))
    keys.match_legacy_blind_indexes = bool(left)
    log.info("blind indexes: %d candidates re-indexed with per-field keys%s", done,
             f"; {left} still on the old scheme (another process is on them, or the next sync does them)" if left
             else "; the hub is fully on per-field keys")
    return done


def reindex_blind_indexes(settings: Settings, keys: pii.Keyring, batch_size: int = REINDEX_BATCH,
                          max_batches: int | None = None) -> int:
    """Re-index candidates on an older blind-index scheme, batch by batch; returns how many."""
    done = batches = 0
    while max_batches is None or batches < max_batches:
        n = _reindex_batch(settings, keys, batch_size)
        if n is None:
            break
        done += n
        batches += 1
    return done


def _reindex_batch(settings: Settings, keys: pii.Keyring, batch_size: int) -> int | None:
    """One batch in one transaction: how many rows it re-indexed, None when there was nothing to take."""
    fields = [(field, bidx) for field, bidx in CANDIDATE_PII if bidx]
    with transaction(settings.hub_url) as s:
        rows = s.execute(select(Candidate.id, Candidate.candidate_key, Candidate.key_version,
                                *(getattr(Candidate, f"{field}_enc") for field, _ in fields))
                         .where(Candidate.bidx_scheme < BLIND_INDEX_SCHEME).order_by(Candidate.id)
                         .limit(batch_size).with_for_update(skip_locked=True)).all()
        if not rows:
            return None
        n = 0
        for row in rows:
            values = {}
            for field, bidx in fields:
                token = getattr(row, f"{field}_enc")
                # Under the row's own key version, as before: a rotation moves it to the active one.
                values[bidx] = (keys.blind_index(keys.decrypt(token, f"candidates.{field}:{row.candidate_key}"),
                                                 field, row.key_version) if token else None)
            n += s.execute(update(Candidate).where(
                Candidate.id == row.id, Candidate.key_version == row.key_version,
                Candidate.bidx_scheme < BLIND_INDEX_SCHEME).values(**values, bidx_scheme=BLIND_INDEX_SCHEME)
                .execution_options(synchronize_session=False)).rowcount
        return n


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
                column.under_key(keys.active)))
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
                    setattr(row, bidx, keys.blind_index(value, field))
            row.key_version = keys.active
            row.bidx_scheme = BLIND_INDEX_SCHEME  # whatever the row had before: every index is rewritten
        return len(rows)


def _rekey_column(settings: Settings, keys: pii.Keyring, col: EncryptedColumn, batch_size: int) -> int:
    column = getattr(col.model, col.column)
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(col.model).where(column.is_not(None), ~column.under_key(keys.active))
                         .order_by(col.model.id).limit(batch_size).with_for_update(skip_locked=True)).all()
        for row in rows:
            context = col.context(row)
            setattr(row, col.column, keys.reencrypt(getattr(row, col.column), context))
        return len(rows)
