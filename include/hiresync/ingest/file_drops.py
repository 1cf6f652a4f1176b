"""File drops: read the new CSV and Excel files of a drop folder into staged payloads.

A file is new until the load step records its content hash (table file_drops) in the same
transaction as its rows, so a file is read once, whatever its name, and a corrected copy (other
bytes) is read again. Each payload carries its file name and row number; its key is
"<file>#<row>", so a quarantined row says where it is, and a corrected file of the same name
updates the same results.

A file name holding a resident ID, a mobile or an e-mail (`复试_张伟_<ID>.csv`) would spread that
value through the hub (file_drops, result keys, lineage, quarantine, outbox): such a file is read under
a keyed pseudonym, `drop-<hash>.csv` (stable: a corrected copy under the same name updates the same
results), and the log names it by its position in the folder, never by its name. A symlink, or a
path through a symlinked folder, that leads outside the drop folder is not followed.
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
from hiresync.privacy.pii import mask_text

if TYPE_CHECKING:  # the step passes its context; the pipeline sits above the stages
    from hiresync.pipeline.context import RunContext

log = logging.getLogger(__name__)


def read_new_files(ctx: RunContext, profile: FileDropProfile) -> tuple[list[dict], dict]:
    """(payloads, manifest additions: `files` read and `skipped_files` with the reason)."""
    folder = ctx.settings.resolve(profile.folder)
    if not folder.is_dir():
        raise HireSyncError(f"source {ctx.source.name!r}: drop folder {folder} does not exist")
    paths = sorted({p for pattern in profile.patterns for p in folder.glob(pattern)
                    if not p.name.startswith("~$")})  # ~$x.xlsx: Excel's lock file
    root = folder.resolve()
    with ctx.transaction() as s:
        known = set(s.scalars(select(FileDrop.content_hash).where(FileDrop.source == ctx.source.name)))
    payloads: list[dict] = []
    files: list[dict] = []
    skipped: list[dict] = []
    for position, found in enumerate(paths, 1):
        where = f"file {position} of {len(paths)} in the drop folder (sorted by name)"
        if not found.resolve().is_relative_to(root):
            log.warning("source %s: %s is a link to outside the drop folder: not followed", ctx.source.name, where)
            skipped.append({"file": where, "problem": "a link to outside the drop folder"})
            continue
        if not found.is_file():
            continue
        path = found
        if mask_text(path.stem) != path.stem:  # an ID, a phone or an e-mail in the name
            alias = f"drop-{ctx.keys.pseudonym('drop_file_name', path.name)}{path.suffix.lower()}"
            log.warning("source %s: %s has personal data in its name; read as %s (name files without IDs, "
                        "phones or e-mails)", ctx.source.name, where, alias)
            path = path.with_name(alias)
        data = found.read_bytes()
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

