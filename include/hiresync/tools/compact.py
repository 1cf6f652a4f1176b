"""`hiresync source compact-payloads`: a source's raw payloads stored before it had a compression
dictionary, compressed against it.

A source gets its dictionary once it has 1,000 payloads (hiresync.privacy.payloads); what was stored
before, and everything in a hub upgraded from a version without dictionaries, stays compressed alone
(about twice the bytes) until retention removes it. This re-seals those payloads: the source's
dictionary is trained first if it has none yet (from the newest stored payloads, as a load would),
then its payloads are read in order of id, a batch per transaction, and each one compressed alone is
written again against the dictionary. The bytes a reader gets are the same (`open_payload`).

- Safe to stop and run again: a batch commits whole, and a payload already against a dictionary is
  left as it is.
- Beside the rest of HireSync: it holds the source's sync lock, so it stops at once if a sync of
  the source is running, and a sync started meanwhile stops naming it (as beside another sync: run
  it between syncs). A payload that retention or an erasure purged meanwhile stays purged (written
  only while it holds a payload). A relay reading a payload meanwhile reads the old or the new form:
  both open.
- Space: the database reuses what the payloads no longer take for new rows; only `VACUUM` (SQLite)
  or `VACUUM FULL raw_payloads` (PostgreSQL, which locks the table while it runs) gives it back to
  the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import bindparam, select, update

from hiresync.config.settings import Settings
from hiresync.config.sources import get_source
from hiresync.hub.models import RawPayload
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec
from hiresync.pipeline.lock import acquire, holder, release
from hiresync.privacy.payloads import TRAIN_FROM, dictionary_for, reseal
from hiresync.privacy.pii import Keyring

BATCH = 1_000


@dataclass(frozen=True)
class Compaction:
    source: str
    dictionary: bool  # False: the source has fewer than TRAIN_FROM payloads, nothing was changed
    compacted: int    # payloads now against the dictionary
    already: int      # payloads that were against it before
    # Compressed bytes of the payloads re-sealed, before and after (a payload purged between its
    # batch's read and write is counted here, though not written).
    bytes_before: int
    bytes_after: int


def compact_payloads(settings: Settings, keys: Keyring, source: str, batch_size: int = BATCH) -> Compaction:
    cfg = get_source(settings, source)
    spec = MappingSpec.load(settings.resolve(cfg.mapping))
    run_id = f"compact-payloads:{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}"
    acquire(settings, source, run_id, holder(airflow=False))
    try:
        with transaction(settings.hub_url) as s:
            dictionary = dictionary_for(s, keys, source, run_id, [], spec.interview_content)
        if dictionary is None:
            return Compaction(source, False, 0, 0, 0, 0)
        compacted = already = before = after = 0
        last = 0
        table = RawPayload.__table__
        while True:
            with transaction(settings.hub_url) as s:
                rows = s.execute(select(RawPayload.id, RawPayload.payload_hash, RawPayload.payload_enc)
                                 .where(RawPayload.source == source, RawPayload.payload_enc.is_not(None),
                                        RawPayload.id > last)
                                 .order_by(RawPayload.id).limit(batch_size)).all()
                if not rows:
                    break
                last = rows[-1].id
                new = []
                for row in rows:
                    done = reseal(keys, source, row.payload_hash, row.payload_enc, dictionary)
                    if done is None:
                        already += 1
                        continue
                    new.append({"rid": row.id, "enc": done[0]})
                    before, after = before + done[1], after + done[2]
                if new:
                    # Only while it still holds a payload: one purged since it was read stays purged.
                    compacted += s.execute(
                        update(table).where(table.c.id == bindparam("rid"), table.c.payload_enc.is_not(None))
                        .values(payload_enc=bindparam("enc", type_=table.c.payload_enc.type)), new).rowcount
        return Compaction(source, True, compacted, already, before, after)
    finally:
        release(settings, source, run_id)


def describe(result: Compaction, dialect: str) -> str:
    """What the command prints: counts and sizes only."""
    if not result.dictionary:
        return (f"source {result.source}: no compression dictionary yet (it is trained once the source has "
                f"{TRAIN_FROM:,} payloads); nothing changed")
    if not result.compacted:
        return f"source {result.source}: all {result.already:,} payloads are compressed against its dictionary already"
    each = f"{result.bytes_before / result.compacted:,.0f} -> {result.bytes_after / result.compacted:,.0f} bytes each"
    freed = (result.bytes_before - result.bytes_after) / 2**20
    back = {"sqlite": "VACUUM gives it back to the disk",
            "postgresql": "VACUUM FULL raw_payloads gives it back to the disk (it locks the table while it runs)"}
    were = f"; {result.already:,} were already" if result.already else ""
    return (f"source {result.source}: {result.compacted:,} payloads compressed against its dictionary ({each}, "
            f"{freed:,.1f} MB less){were}. The database reuses the space for new rows; "
            + back.get(dialect, "OPTIMIZE TABLE raw_payloads gives it back to the disk") + ".")
