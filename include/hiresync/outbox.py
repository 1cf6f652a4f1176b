"""The outbox relay: pending outbox rows -> a target, at least once, in outbox order.

A batch is sent, then marked sent in the hub. A crash between the two re-sends the batch, which
the target absorbs (idempotency keys, version guard): at-least-once delivery with idempotent
receivers (DESIGN.md invariant 4). Errors stored on the row name the error type only: a driver's
message can quote the personal data it was given.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update

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


def relay(settings: Settings, keys: Keyring, target_name: str, batch_size: int = 500) -> int:
    """Deliver everything pending for one target; returns how many rows were delivered."""
    target = target_for(target_name, settings)
    delivered = 0
    while True:
        with transaction(settings.hub_url) as s:
            rows = s.execute(select(Outbox.id, Outbox.idempotency_key, Outbox.payload_enc)
                             .where(Outbox.target == target_name, Outbox.status == "pending")
                             .order_by(Outbox.id).limit(batch_size)).all()
        if not rows:
            return delivered
        payloads = [(r.idempotency_key, jsonfast.loads(keys.decrypt(r.payload_enc, f"outbox:{target_name}:{r.idempotency_key}")))
                    for r in rows]
        ids = [r.id for r in rows]
        try:
            target.upsert(payloads)
        except Exception as exc:  # noqa: BLE001 - recorded, then the run fails with a masked message
            with transaction(settings.hub_url) as s:
                s.execute(update(Outbox).where(Outbox.id.in_(ids))
                          .values(attempts=Outbox.attempts + 1, last_error=type(exc).__name__))
            raise HireSyncError(f"delivery to {target_name!r} failed ({type(exc).__name__}); "
                                f"{len(ids)} rows stay pending and will be retried") from None
        with transaction(settings.hub_url) as s:
            s.execute(update(Outbox).where(Outbox.id.in_(ids))
                      .values(status="sent", attempts=Outbox.attempts + 1, sent_at=datetime.now(timezone.utc),
                              last_error=None))
        delivered += len(ids)
