"""File drops: read the new CSV and Excel files of a drop folder into staged payloads.

A file is new until the load step records its content hash (table file_drops) in the same
transaction as its rows, so a file is read once, whatever its name, and a corrected copy (other
bytes) is read again. Each payload carries its file name and row number; its key is
"<file>#<row>", so a quarantined row says where it is, and a corrected file of the same name
updates the same results.
"""

from __future__ import annotations

import hashlib
import logging

from typing import TYPE_CHECKING

from sqlalchemy import select

from connectors.files.profile import FileDropProfile
from connectors.files.reader import FileProblem, read_rows
from hiresync.errors import HireSyncError
from hiresync.hub.models import FileDrop

if TYPE_CHECKING:  # the step passes its context; the pipeline sits above the stages
    from hiresync.pipeline.context import RunContext

log = logging.getLogger(__name__)


def read_new_files(ctx: RunContext, profile: FileDropProfile) -> tuple[list[dict], dict]:
    """(payloads, manifest additions: `files` read and `skipped_files` with the reason)."""
    folder = ctx.settings.resolve(profile.folder)
    if not folder.is_dir():
        raise HireSyncError(f"source {ctx.source.name!r}: drop folder {folder} does not exist")
    paths = sorted({p for pattern in profile.patterns for p in folder.glob(pattern)
                    if p.is_file() and not p.name.startswith("~$")})  # ~$x.xlsx: Excel's lock file
    with ctx.transaction() as s:
        known = set(s.scalars(select(FileDrop.content_hash).where(FileDrop.source == ctx.source.name)))
    payloads: list[dict] = []
    files: list[dict] = []
    skipped: list[dict] = []
    for path in paths:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in known:
            continue
        known.add(digest)  # two copies of one file in the folder: read once
        try:
            rows = read_rows(path, data, profile.columns, sheet=profile.sheet, csv_encoding=profile.csv_encoding)
        except FileProblem as problem:
            # Not recorded as read: the department fixes the file and the next run reads it.
            log.warning("source %s: skipped %s", ctx.source.name, problem)
            skipped.append({"file": problem.file, "problem": problem.cause})
            continue
        payloads.extend({"file": path.name, "row": row, "row_key": f"{path.name}#{row}", **values}
                        for row, values in rows)
        files.append({"file": path.name, "hash": digest, "rows": len(rows)})
    return payloads, {"files": files, "skipped_files": skipped}

