"""Extract: pull every page since the watermark (minus the overlap) into run-scoped staging."""

from __future__ import annotations

import hashlib
from datetime import datetime

from connectors.rest.source import RestSource
from hiresync import jsonfast
from hiresync.connections import get_connection
from hiresync.hub.models import Run, Watermark
from hiresync.pipeline.context import RunContext


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(jsonfast.dumps(payload, sort_keys=True).encode()).hexdigest()


def extract(ctx: RunContext) -> dict:
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id)
        if run is not None and run.status in ("loaded", "success"):
            return ctx.staging.read_json("manifest") if ctx.staging.exists("manifest") else {"pulled": run.pulled}
        if run is None:
            run = Run(id=ctx.run_id, source=ctx.source.name, status="extracting")
            s.add(run)
        run.status, run.error = "extracting", None
    # A broken profile or mapping stops the run here, before anything is pulled, and the run
    # row just written carries the reason for `hiresync status`.
    profile, _ = ctx.profile, ctx.mapping
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id)
        mark = s.get(Watermark, ctx.source.name)
        since = mark.cursor_value - profile.overlap if mark else profile.start
        run.pulled_since = since

    source = RestSource(profile, get_connection(profile.connection))
    newest: list[datetime] = []

    def records():
        for page in source.pages(since):
            for payload in page:
                cursor = source.cursor_of(payload)  # the profile's format and timezone, not a guess
                if cursor and (not newest or cursor > newest[0]):
                    newest[:] = [cursor]
                yield {"payload": payload, "hash": payload_hash(payload)}

    pulled = ctx.staging.write_records("raw", records())
    manifest = {"source": ctx.source.name, "run_id": ctx.run_id, "since": since.isoformat(), "pulled": pulled,
                "max_cursor": newest[0].isoformat() if newest else None}
    ctx.staging.write_json("manifest", manifest)
    with ctx.transaction() as s:
        s.get(Run, ctx.run_id).pulled = pulled
    return manifest
