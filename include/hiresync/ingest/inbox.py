"""The webhook inbox: pushed deliveries, stored (encrypted) before the receiver answers 2xx and
drained by the source's sync run like a page from an API.

A delivery id is stored once per source (unique constraint); a repeat is acknowledged and
dropped. Rows stay `new` until the load transaction that committed their data marks them
`drained` (hiresync.load.consumed), so a crash anywhere in between only means they are staged
again by the next run.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hiresync import jsonfast
from hiresync.hub.models import InboxDelivery
from hiresync.privacy.keys import inbox_context as context
from hiresync.privacy.pii import Keyring


def store(s: Session, keys: Keyring, source: str, deliveries: Iterable[tuple[str, str]]) -> int:
    """Store (delivery id, JSON text) pairs not yet in the inbox; returns how many were new.

    A concurrent writer can store the same id between the check and the insert: the unique
    constraint then fails this transaction and the caller retries it (see store_retrying)."""
    wanted = dict(deliveries)
    if not wanted:
        return 0
    known = set(s.scalars(select(InboxDelivery.delivery_id).where(
        InboxDelivery.source == source, InboxDelivery.delivery_id.in_(list(wanted)))))
    new = [dict(source=source, delivery_id=d, payload_enc=keys.encrypt(text, context(source, d)), status="new")
           for d, text in wanted.items() if d not in known]
    if new:
        s.execute(insert(InboxDelivery.__table__), new)
    return len(new)


def store_retrying(transaction, keys: Keyring, source: str, deliveries: list[tuple[str, str]]) -> int:
    """`store` in its own transaction; a lost race on the unique constraint is retried (the
    retry sees the other writer's row and skips it)."""
    for attempt in range(3):
        try:
            with transaction() as s:
                return store(s, keys, source, deliveries)
        except IntegrityError:
            if attempt == 2:
                raise
    return 0


def receive(s: Session, keys: Keyring, source: str, delivery_id: str, text: str) -> str:
    """One pushed delivery: "stored", "duplicate" (the id is known with the same body) or "conflict"
    (the id is known with another body: never silently acknowledged)."""
    known = s.scalar(select(InboxDelivery.payload_enc).where(InboxDelivery.source == source,
                                                             InboxDelivery.delivery_id == delivery_id))
    if known is None:
        s.execute(insert(InboxDelivery.__table__), [dict(source=source, delivery_id=delivery_id, status="new",
                                                         payload_enc=keys.encrypt(text, context(source, delivery_id)))])
        return "stored"
    same = hashlib.sha256(keys.decrypt(known, context(source, delivery_id)).encode()).digest() == \
        hashlib.sha256(text.encode()).digest()
    return "duplicate" if same else "conflict"


def receive_retrying(transaction, keys: Keyring, source: str, delivery_id: str, text: str) -> str:
    """`receive` in its own transaction; a lost race on the unique constraint is retried."""
    for attempt in range(3):
        try:
            with transaction() as s:
                return receive(s, keys, source, delivery_id, text)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def pending(s: Session, keys: Keyring, source: str) -> list[tuple[int, dict]]:
    """(inbox row id, payload) of every delivery not drained yet, in arrival order."""
    rows = s.execute(select(InboxDelivery.id, InboxDelivery.delivery_id, InboxDelivery.payload_enc)
                     .where(InboxDelivery.source == source, InboxDelivery.status == "new")
                     .order_by(InboxDelivery.id)).all()
    return [(r.id, jsonfast.loads(keys.decrypt_bytes(r.payload_enc, context(source, r.delivery_id)))) for r in rows]
