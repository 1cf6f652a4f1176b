"""What a run consumed besides the vendor's pages, recorded in the load step's transaction.

A webhook source's run staged inbox rows; a file-drop source's run read files. Marking the rows
`drained` and recording the files' content hashes in the same transaction as their data means a
crash before it leaves them to be read again, and a crash after it finds them done: never lost,
never read twice. Both writes are conditional, so a retried load changes nothing.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hiresync.hub.models import FileDrop, InboxDelivery
from hiresync.hub.bulk import one_of

CHUNK = 500


def record_consumed(s: Session, source: str, run_id: str, manifest: dict) -> None:
    ids = manifest.get("inbox_ids") or []
    for i in range(0, len(ids), CHUNK):
        s.execute(update(InboxDelivery).where(one_of(InboxDelivery.id, ids[i:i + CHUNK]), InboxDelivery.status == "new")
                  .values(status="drained", run_id=run_id))
    files = manifest.get("files") or []
    if files:
        known = set(s.scalars(select(FileDrop.content_hash).where(
            FileDrop.source == source, one_of(FileDrop.content_hash, [f["hash"] for f in files]))))
        new = [dict(source=source, file_name=f["file"], content_hash=f["hash"], rows=f["rows"], run_id=run_id)
               for f in files if f["hash"] not in known]
        if new:
            s.execute(insert(FileDrop.__table__), new)
