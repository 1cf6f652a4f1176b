"""The outbox relay: pending outbox rows -> a target, at least once, in outbox order.

A batch is sent, then marked sent in the hub. A crash between the two re-sends the batch, which
the target absorbs (idempotency keys, version guard): at-least-once delivery with idempotent
receivers (DESIGN.md invariant 4). Errors stored on the row name the error type only: a driver's
message can quote the personal data it was given.
"""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import groupby

from sqlalchemy import bindparam, select, update

from connectors.targets.ehr_sql import EhrSqlTarget
from hiresync import jsonfast
from hiresync.errors import HireSyncError
from hiresync.hub.models import Outbox
from hiresync.hub.store import engine_for, transaction
from hiresync.pii import Keyring
from hiresync.settings import Settings


def target_for(name: str, settings: Settings):
    if name == "ehr":
        return EhrSqlTarget(settings.ehr_url, engine=engine_for(settings.ehr_url))
    raise HireSyncError(f"target {name!r} is not configured")


def target_ref(target, payload: dict) -> str:
    """The target's own id for a delivered record: what the target reports if it can, else the
    result key the SQL targets are keyed by ("vendor:vendor result id")."""
    if "result" not in payload:  # an erase request: the target's rows for this candidate are gone
        return payload["candidate_key"]
    ref_of = getattr(target, "ref_of", None)
    return str(ref_of(payload)) if ref_of else payload["result"]["result_key"]


def _send(target, rows, payloads) -> None:
    """In outbox order; consecutive upserts go as one batch, an erase request on its own."""
    for kind, group in groupby(zip(rows, payloads), key=lambda pair: pair[0].kind):
        if kind == "erase":
            for _, (_, payload) in group:
                target.erase(payload["candidate_key"], payload["result_keys"])
        else:
            target.upsert([item for _, item in group])


def relay(settings: Settings, keys: Keyring, target_name: str, batch_size: int = 500) -> int:
    """Deliver everything pending for one target; returns how many rows were delivered."""
    target = target_for(target_name, settings)
    delivered = 0
    while True:
        with transaction(settings.hub_url) as s:
            rows = s.execute(select(Outbox.id, Outbox.kind, Outbox.idempotency_key, Outbox.payload_enc)
                             .where(Outbox.target == target_name, Outbox.status == "pending")
                             .order_by(Outbox.id).limit(batch_size)).all()
        if not rows:
            return delivered
        payloads = [(r.idempotency_key, jsonfast.loads(keys.decrypt(r.payload_enc, f"outbox:{target_name}:{r.idempotency_key}")))
                    for r in rows]
        ids = [r.id for r in rows]
        try:
            _send(target, rows, payloads)
        except Exception as exc:  # noqa: BLE001 - recorded, then the run fails with a masked message
            with transaction(settings.hub_url) as s:
                s.execute(update(Outbox).where(Outbox.id.in_(ids))
                          .values(attempts=Outbox.attempts + 1, last_error=type(exc).__name__))
            raise HireSyncError(f"delivery to {target_name!r} failed ({type(exc).__name__}); "
                                f"{len(ids)} rows stay pending and will be retried") from None
        sent_at = datetime.now(timezone.utc)
        with transaction(settings.hub_url) as s:
            # target_ref: the target's own id for the record, so a trace can name the row in the target.
            outbox = Outbox.__table__  # Core: one executemany, not the ORM's bulk-by-primary-key mode
            s.execute(update(outbox).where(outbox.c.id == bindparam("row_id"))
                      .values(status="sent", attempts=outbox.c.attempts + 1, sent_at=sent_at, last_error=None,
                              target_ref=bindparam("ref")),
                      [{"row_id": r.id, "ref": target_ref(target, p)} for r, (_, p) in zip(rows, payloads)])
        delivered += len(ids)
