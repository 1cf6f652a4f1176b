"""Extract: pull every page since the watermark (minus the overlap) into run-scoped staging.

By the profile's kind: a REST vendor's pages; a webhook source's inbox (after filling gaps from
the vendor's replay endpoint); a file-drop source's new files. Whatever the kind, the payloads land
in the same staging and go through the same validate -> map -> load; what the run consumed (inbox
rows, files) is listed in the manifest and recorded by the load transaction (pipeline.consumed).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator

from connectors.errors import SourceResponseError
from connectors.files.profile import FileDropProfile
from connectors.rest.profile import (
    DEFAULT_FUTURE_TOLERANCE, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FIELD_CHARS, RestProfile,
)
from connectors.rest.source import RestSource
from connectors.webhook.profile import WebhookProfile
from hiresync import jsonfast
from hiresync.ingest import inbox
from hiresync.config.connections import get_connection
from hiresync.hub.models import Run, Watermark
from hiresync.ingest.bounds import Limits, check_cursor, check_shape
from hiresync.pipeline.context import RunContext


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(jsonfast.dumpb(payload, sort_keys=True)).hexdigest()


def extract(ctx: RunContext) -> dict:
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id)
        if run is not None and run.status in ("loaded", "success"):
            return _summary(ctx.staging.read_json("manifest")) if ctx.staging.exists("manifest") else {"pulled": run.pulled}
        if run is None:
            run = Run(id=ctx.run_id, source=ctx.source.name, status="extracting")
            s.add(run)
        run.status, run.error = "extracting", None
        if run.load_progress and ctx.staging.exists("manifest"):
            # Some of its batches are loaded: the run goes on with the pages it staged (pulled anew,
            # they could be cut into other batches), and the load after the batches it committed.
            return _summary(ctx.staging.read_json("manifest"))
        run.load_progress = None  # staging is gone (reaped): this run starts over; what was committed is found unchanged
    # A broken profile or mapping stops the run here, before anything is pulled, and the run
    # row just written carries the reason for `hiresync status`.
    profile, _ = ctx.profile, ctx.mapping
    if isinstance(profile, FileDropProfile):
        from hiresync.ingest.file_drops import read_new_files

        payloads, consumed = read_new_files(ctx, profile)
        return _stage(ctx, None, payloads, None, consumed, _limits(None))
    polled = profile.replay if isinstance(profile, WebhookProfile) else profile
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id)
        mark = s.get(Watermark, ctx.source.name)
        since = (mark.cursor_value - polled.overlap if mark else polled.start) if polled else None
        run.pulled_since = since

    if isinstance(profile, WebhookProfile):
        return _stage(ctx, since, *_drain_inbox(ctx, profile, since), _limits(polled))
    source = RestSource(profile, get_connection(profile.connection))
    return _stage(ctx, since, _counting_pages(ctx, source.pages(since)), source.cursor_of, {}, _limits(profile))


def _counting_pages(ctx: RunContext, pages: Iterable[list[dict]]) -> Iterator[dict]:
    """The pages' records, one by one; the pages read so far go into the staging's progress lines."""
    counts = ctx.staging.counts
    for n, page in enumerate(pages, start=1):
        counts["pages"] = n
        yield from page


def _limits(polled: RestProfile | None) -> Limits:
    if polled is None:  # a file drop or a webhook without replay: the defaults
        return Limits(DEFAULT_MAX_DEPTH, DEFAULT_MAX_FIELD_CHARS, timedelta(seconds=DEFAULT_FUTURE_TOLERANCE))
    return Limits(polled.max_depth, polled.max_field_chars, polled.future_tolerance)


def _stage(ctx: RunContext, since: datetime | None, payloads: Iterable[dict],
           cursor_of: Callable[[dict], datetime | None] | None, consumed: dict, limits: Limits) -> dict:
    newest: list[datetime] = []
    polled = getattr(ctx.profile, "replay", None) or ctx.profile
    cursor_field = polled.cursor_field if isinstance(polled, RestProfile) else "cursor"
    now = datetime.now(timezone.utc)

    def records():
        for payload in payloads:
            payload, defect = check_shape(payload, limits)
            # the profile's format and timezone, not a guess
            cursor = cursor_of(payload) if cursor_of and isinstance(payload, dict) else None
            defect = defect or check_cursor(cursor, cursor_field, now, limits)
            if defect is None and cursor and (not newest or cursor > newest[0]):
                newest[:] = [cursor]  # a record quarantined here never moves the watermark
            record = {"payload": payload, "hash": payload_hash(payload)}
            if defect:
                record["defect"] = defect
            yield record

    pulled = ctx.staging.write_records("raw", records())
    manifest = {"source": ctx.source.name, "run_id": ctx.run_id, "since": since.isoformat() if since else None,
                "pulled": pulled, "max_cursor": newest[0].isoformat() if newest else None, **consumed}
    ctx.staging.write_json("manifest", manifest)
    with ctx.transaction() as s:
        s.get(Run, ctx.run_id).pulled = pulled
    return _summary(manifest)


def _summary(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "inbox_ids"}  # ids stay in staging, not in XCom


def _drain_inbox(ctx: RunContext, profile: WebhookProfile, since: datetime | None):
    """Fill gaps from the replay endpoint into the inbox (de-duplicated by delivery id), then take
    every delivery not drained yet. Their ids go in the manifest for the load step to mark."""
    cursor_of = None
    if profile.replay is not None:
        replay = RestSource(profile.replay, get_connection(profile.replay.connection))
        cursor_of = replay.cursor_of
        field = profile.replay_id_field
        for page in replay.pages(since):
            pairs = []
            for event in page:
                delivery_id = event.get(field) if isinstance(event, dict) else None
                if not isinstance(delivery_id, (str, int)) or str(delivery_id) == "":
                    raise SourceResponseError(ctx.source.name, f"GET {profile.replay.path}",
                                              f"a replayed delivery has no {field!r}")
                pairs.append((str(delivery_id), jsonfast.dumps(event)))
            inbox.store_retrying(ctx.transaction, ctx.keys, ctx.source.name, pairs)
    with ctx.transaction() as s:
        rows = inbox.pending(s, ctx.keys, ctx.source.name)
    return [payload for _, payload in rows], cursor_of, {"inbox_ids": [row_id for row_id, _ in rows]}
