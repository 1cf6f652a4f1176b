"""Load: batch by batch, each batch committed on its own; the run is "loaded" only with its last.

Each micro-batch commits in one hub transaction: its raw payloads (encrypted), quarantine rows,
identity resolution, results upserted behind a version guard, outbox rows for what changed, record
lineage, and the run's progress (`runs.load_progress`: batches done, their rows, their outcome
counts). After the last batch one more transaction checks the accounting, writes the run's counts,
moves the watermark and records what the run consumed (inbox rows, files), and marks the run
loaded. So the hub holds one batch of uncommitted work at a time; a crash leaves every batch either
committed whole or not at all, the run not loaded and the watermark where it was (DESIGN.md
invariants 1-3); a retried load of the run goes on after its last committed batch with that batch's
counts, and a new run over the same window finds what was committed as unchanged (content hashes,
idempotency keys): nothing twice. Work is done with set-based Core statements (inserts through
hiresync.hub.bulk: COPY on PostgreSQL, executemany elsewhere): a run of 100,000 results must not
cost 100,000 round trips.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, NamedTuple, TypeVar

from sqlalchemy import bindparam, delete, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hiresync import jsonfast
from hiresync.errors import HireSyncError
from hiresync.heap import give_back_free_memory
from hiresync.hub.bulk import insert_rows, lookup, one_of
from hiresync.hub.store import engine_for, keep_wal_small
from hiresync.load.identity import Conflict, IdentityResolver
from hiresync.hub.models import (
    DimensionScore, InterviewResult, MappingVersion, Outbox, Quarantine, RawPayload, RecordLineage, Run, Watermark,
)
from hiresync.mapping.spec import content_hash
from hiresync.privacy.payloads import dictionary_for, seal
from hiresync.pipeline.context import RunContext
from hiresync.load.consumed import record_consumed
from hiresync.load.known import known_payloads
from hiresync.delivery.beside import beside_when, merge_relayed
from hiresync.delivery.render import delivery_payload
from hiresync.delivery.workflow import Change, queue_events

log = logging.getLogger(__name__)
CHUNK = 500
ANALYZE_AFTER = 10_000  # rows pulled in one run
T = TypeVar("T")


def load(ctx: RunContext) -> dict:
    staging = ctx.staging
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id)
        if run is None:
            raise HireSyncError(f"run {ctx.run_id!r} was never extracted")
        if run.status in ("loaded", "success"):
            return run_counts(run)  # a retried task: the data is in, do nothing twice
        if not staging.exists("map_problems"):
            raise HireSyncError(f"run {ctx.run_id!r} has no staged batches to load (status {run.status}: "
                                f"{run.error or 'not mapped yet'}); start a new run")
        progress = run.load_progress or {"batches": 0, "rows": 0, "tally": {}}
    manifest = staging.read_json("manifest")
    validation = staging.read_json("validation")
    failures = validation["failures"]
    map_problems = staging.read_json("map_problems")
    first, offset = progress["batches"], progress["rows"]
    tally: Counter[str] = Counter(progress["tally"])
    # Closing the session rolls back a batch that did not commit. A large run is delivered beside
    # its load, batch by batch as they commit (hiresync.delivery.beside).
    to_load = (manifest.get("pulled") or 0) - offset
    with beside_when(ctx.settings, ctx.keys, ctx.source.targets, to_load) as helper, \
            Session(engine_for(ctx.settings.hub_url), expire_on_commit=False) as s:
        loader = _Loader(s, ctx, keep_bodies=helper is not None)
        statistics = _Statistics(s)
        # A retried load skips the batches a failed attempt committed (their counts are in `tally`).
        batches = zip(staging.read_batches("raw", skip=first, done=offset), staging.read_batches("mapped", skip=first),
                      staging.read_batches("known", skip=first))
        for number, (raws, mapped, known) in enumerate(batches, start=first):
            try:
                tally += _load_batch(s, ctx, loader, raws,
                                     {m["row"]: m for m in mapped if str(m["row"]) not in map_problems},
                                     {k["row"] for k in known}, offset, failures, map_problems,
                                     bool(manifest.get("replay")))
                statistics.after(offset + len(raws))
                offset += len(raws)
                # With the batch: its outbox rows are due once it commits, and a relay renders them
                # with the spec they name (another source's deliver, or the relay beside this load).
                _remember_mapping(s, ctx)
                s.execute(update(Run).where(Run.id == ctx.run_id).values(load_progress={
                    "batches": number + 1, "rows": offset, "tally": dict(tally)}))
                if helper is not None:
                    # Its outbox rows' bodies, on their way while the batch commits: the relay may
                    # claim the rows as soon as they are committed, and renders any row whose body
                    # has not come. A body depends on its row's idempotency key alone (the same
                    # payload and spec), so one handed for a batch that then fails is never wrong.
                    helper.hand(loader.take_bodies())
                s.commit()
                keep_wal_small(s.get_bind())  # SQLite: between batches, while no write is open
                give_back_free_memory()  # the batch's buffers: the relay beside the load adds to this RSS
            except HireSyncError:  # ours already names the run and the row
                raise
            except Exception as exc:  # a database error: the run fails naming the batch; what committed stays
                kept = f"the {number} batches before it are loaded, the run is not" if number else "nothing was loaded"
                raise HireSyncError(
                    f"run {ctx.run_id!r}: batch {number + 1} (rows {offset}-{offset + len(raws) - 1}) failed to load "
                    f"({type(exc).__name__}); {kept}; a retry of the run goes on from this batch") from exc

    if helper is not None:  # for the deliver step: it relays the rest and reports both
        staging.write_json("relayed", merge_relayed(staging, helper.outcome))
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id, with_for_update=True)
        if run.status in ("loaded", "success"):
            return run_counts(run)
        run.pulled = offset
        run.inserted, run.updated = tally["inserted"], tally["updated"]
        run.unchanged = tally["unchanged"] + tally["stale"] + tally["superseded"]
        run.quarantined = tally["quarantined"]
        run.mapping_version = ctx.mapping.version
        run.validation_summary = validation["summary"]
        _remember_mapping(s, ctx)
        if run.pulled != run.inserted + run.updated + run.unchanged + run.quarantined:
            raise HireSyncError(f"run {ctx.run_id!r}: accounting does not balance; the run is not marked loaded")
        if manifest.get("pulled") is not None and manifest["pulled"] != run.pulled:
            raise HireSyncError(f"run {ctx.run_id!r}: staged {run.pulled} of {manifest['pulled']} pulled; "
                                f"the run is not marked loaded")
        if manifest.get("max_cursor"):
            run.watermark_after = _advance_watermark(s, ctx, datetime.fromisoformat(manifest["max_cursor"]))
        record_consumed(s, ctx.source.name, ctx.run_id, manifest)  # inbox rows, dropped files: with the run
        run.status, run.load_progress = "loaded", None
        counts = run_counts(run)
    if counts["pulled"] >= ANALYZE_AFTER:
        _analyze(ctx)
    return counts


_LOADED_TABLES = ("raw_payloads, interview_results, dimension_scores, candidates, candidate_vendor_ids, "
                  "record_lineage, outbox, quarantine, status_events")


def _analyze(ctx: RunContext) -> None:
    """PostgreSQL plans from table statistics that autovacuum refreshes only later: after a large
    load, a fresh hub would otherwise plan the next run's lookups as full scans. Sampled as the
    load's own refreshes are (_Statistics.TARGET), a tenth of the default's time (docs/benchmarks.md);
    autovacuum takes the default sample later, for everything else that reads the hub."""
    engine = engine_for(ctx.settings.hub_url)
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT set_config('default_statistics_target', :target, true)"),
                         {"target": str(_Statistics.TARGET)})
            conn.exec_driver_sql(f"ANALYZE {_LOADED_TABLES}")
    except Exception as exc:  # noqa: BLE001 - statistics are an optimisation: never fail a loaded run
        log.warning("ANALYZE after the load failed (%s); autovacuum will catch up", type(exc).__name__)


class _Statistics:
    """Table statistics refreshed *inside* a batch's transaction on PostgreSQL, once the load has
    1,000 rows and again each time the rows loaded so far have grown fourfold (the planner scales
    the statistics' row counts by a table's current size, so they need not be fresher than that).
    Without them, a first big load into a fresh hub plans every batch's key lookups as scans of all
    the rows loaded before (the planner believes the tables are tiny), and the load slows
    quadratically (docs/benchmarks.md: PostgreSQL went from 174 to 615 results/s with this and
    COPY). ANALYZE in a transaction counts the transaction's own new rows. It holds each table's
    statistics lock until this transaction ends, and so may another run's load, a relay vacuuming
    the outbox or autovacuum: a table whose lock is taken is skipped (SKIP_LOCKED; it keeps its
    older statistics until the next refresh) instead of waited for, and the others are analysed."""

    FIRST, GROWTH = 1_000, 4  # not after every batch
    # PostgreSQL samples 300 x the statistics target rows per table: 3,000 here instead of the
    # default's 30,000. Enough for the row counts and key distinctness these lookups are planned
    # from, at about a tenth of the cost. Encrypted columns get none at all (migration 0020).
    TARGET = 10

    def __init__(self, session: Session):
        self.s = session
        self.on = session.get_bind().dialect.name == "postgresql"
        self.next = self.FIRST

    def after(self, rows: int) -> None:
        if not self.on or rows < self.next:
            return
        self.next = rows * self.GROWTH
        configured = self.s.execute(text("SELECT current_setting('lock_timeout'), "
                                         "current_setting('default_statistics_target')")).one()
        try:
            with self.s.begin_nested():
                self.s.execute(text("SELECT set_config('lock_timeout', '200ms', true), "
                                    "set_config('default_statistics_target', :target, true)"),
                               {"target": str(self.TARGET)})
                self.s.execute(text(f"ANALYZE (SKIP_LOCKED) {_LOADED_TABLES}"))
        except OperationalError:  # a lock beyond the tables' own was busy: statistics can wait, the load cannot
            log.info("statistics not refreshed during the load (another session holds a lock they need)")
        finally:
            self.s.execute(text("SELECT set_config('lock_timeout', :lock, true), "
                                "set_config('default_statistics_target', :target, true)"),
                           {"lock": configured[0], "target": configured[1]})


def _load_batch(s: Session, ctx: RunContext, loader: "_Loader", raws: list[dict], staged: dict[int, dict],
                known_rows: set[int], offset: int, failures: dict, map_problems: dict, replay: bool) -> Counter[str]:
    """One micro-batch: raw payloads, quarantine, results behind the version guard, outbox, lineage.
    Rows are numbered across the run (`offset` + position), as validate and map numbered them.
    `staged`: row -> the map step's record and its content hash, for the rows map did not hold back."""
    mapped = {row: m["record"] for row, m in staged.items()}
    # Staged by map with each record; a batch staged before map did so has none.
    digests = {row: m.get("digest") or content_hash(m["record"]) for row, m in staged.items()}
    raw_ids = dict(zip(range(offset, offset + len(raws)), loader.store_raw_payloads(raws)))
    raw_of = dict(zip(range(offset, offset + len(raws)), raws))
    outcomes: dict[int, str] = {}
    row_keys: dict[int, str] = {}
    result_ids: dict[str, int] = {}

    known = known_payloads(s, ctx.source.name, ctx.mapping,
                           [(ctx.mapping.key_of(raw_of[r]["payload"]) or "", raw_of[r]["hash"]) for r in known_rows])
    quarantine_rows = []
    for row, raw in raw_of.items():
        problems = failures.get(str(row)) or map_problems.get(str(row))
        key = ctx.mapping.key_of(raw["payload"]) or ""
        row_keys[row] = key
        if row in known_rows:  # seen before, byte for byte, under this mapping (hiresync.load.known)
            seen = known.get(raw["hash"])
            # Gone from the hub since validate (erased, or its quarantine resolved): nothing to load now.
            outcomes[row] = seen.outcome if seen else "unchanged"
            if outcomes[row] == "quarantined":  # the same defective payload again: counted on its row
                quarantine_rows.append(dict(raw_payload_id=raw_ids[row], again=True))
            if seen and seen.result_id is not None:
                result_ids.setdefault(key, seen.result_id)
        elif problems:
            problems = [{**p, "value": p.get("value") or ctx.mapping.masked_value(raw["payload"], p["field"])}
                        for p in problems]
            quarantine_rows.append(dict(run_id=ctx.run_id, source=ctx.source.name, vendor_result_id=key,
                                        raw_payload_id=raw_ids[row], reason_code=problems[0]["rule"],
                                        problems=problems, status="open"))
            outcomes[row] = "quarantined"
        elif row not in mapped:
            raise HireSyncError(f"run {ctx.run_id!r}: staged row {row} was neither mapped nor quarantined")
    held = _quarantine(s, quarantine_rows, dedupe=not replay)

    # A change feed can hold several versions of one result: within a batch the newest one
    # competes with the hub and the older ones are superseded; across batches the version guard
    # decides, as it does across runs.
    versions: dict[str, list[int]] = {}
    for row in sorted(mapped, key=lambda r: (mapped[r]["result"]["source_updated_at"], r)):
        versions.setdefault(mapped[row]["vendor_result_id"], []).append(row)
    winners = {}
    for key, rows in versions.items():
        winners[key] = rows[-1]
        outcomes.update({r: "superseded" for r in rows[:-1]})
    loader.conflicts = {}
    loader.raw_of_key = {key: raw_ids[row] for key, row in winners.items()}
    for chunk in chunks(list(winners.items()), CHUNK):
        for key, (outcome, result_id) in loader.upsert_results([(k, mapped[r], digests[r]) for k, r in chunk]).items():
            outcomes[winners[key]] = outcome
            if result_id is not None:
                result_ids[key] = result_id
    if loader.conflicts:
        held |= _quarantine(s, [
            dict(run_id=ctx.run_id, source=ctx.source.name, vendor_result_id=key, raw_payload_id=raw_ids[winners[key]],
                 reason_code=c.kind, problems=[{"field": c.field, "rule": c.kind, "value": "see identity review"}],
                 status="open") for key, c in loader.conflicts.items()], dedupe=not replay)
        loader.identity.open_reviews(ctx.run_id, loader.conflicts)
    if not replay:  # a payload held before that loads now (its reason passed with time): its row is done
        _resolve_loaded(s, ctx.run_id, {raw_ids[r] for r, o in outcomes.items() if o != "quarantined"} - held)

    lineage = [dict(run_id=ctx.run_id, source=ctx.source.name, vendor_result_id=row_keys[row],
                    payload_hash=raw["hash"], raw_payload_id=raw_ids[row],
                    result_id=result_ids.get(row_keys[row]) if outcomes[row] != "quarantined" else None,
                    mapping_version=ctx.mapping.version, outcome=outcomes[row])
               for row, raw in raw_of.items()]
    if lineage:
        insert_rows(s, RecordLineage.__table__, lineage)
    return Counter(outcomes.values())


def _quarantine(s: Session, rows: list[dict], dedupe: bool) -> set[int]:
    """Hold payloads back. A payload an open row already holds (the overlap window re-read, a second
    sync) bumps that row's count and last-seen time instead of adding a row; a replay run adds its
    rows (the replay closes the old ones itself). Returns the raw payload ids now held."""
    table = Quarantine.__table__
    held = {r["raw_payload_id"] for r in rows}
    if not rows:
        return held
    now = datetime.now(timezone.utc)
    existing = {}
    if dedupe:
        for chunk in chunks(sorted(held), CHUNK):
            existing.update(lookup(s, (table.c.raw_payload_id, table.c.id), table.c.raw_payload_id, chunk, status="open"))
    seen: Counter[int] = Counter()
    new: dict[int, dict] = {}
    for r in rows:
        if r["raw_payload_id"] in existing or (dedupe and r["raw_payload_id"] in new) or r.get("again"):
            seen[r["raw_payload_id"]] += 1
        else:
            new[r["raw_payload_id"]] = r
    again = [{"qid": existing[rid], "n": n} for rid, n in seen.items() if rid in existing]
    if again:
        s.execute(update(table).where(table.c.id == bindparam("qid"))
                  .values(seen_count=table.c.seen_count + bindparam("n"), last_seen_at=now), again)
    judged = [{"qid": existing[r["raw_payload_id"]], "reason": r["reason_code"], "why": r["problems"]}
              for r in rows if r["raw_payload_id"] in existing and not r.get("again")]
    if judged:  # judged again (a reason time can change): today's reason replaces the old one
        s.execute(update(table).where(table.c.id == bindparam("qid")).values(
            reason_code=bindparam("reason"), problems=bindparam("why", type_=table.c.problems.type)), judged)
    if new:  # seen more than once in this batch and first seen now: counted once per sighting
        insert_rows(s, table, [{**r, "seen_count": 1 + seen.get(rid, 0), "last_seen_at": now}
                               for rid, r in new.items()])
    return held


def _resolve_loaded(s: Session, run_id: str, raw_ids: set[int]) -> None:
    table = Quarantine.__table__
    for chunk in chunks(sorted(raw_ids), CHUNK):
        s.execute(update(table).where(table.c.status == "open", one_of(table.c.raw_payload_id, chunk))
                  .values(status="resolved", resolved_run_id=run_id, resolved_at=datetime.now(timezone.utc)))


def run_counts(run: Run) -> dict:
    return {k: getattr(run, k) for k in ("pulled", "inserted", "updated", "unchanged", "quarantined")}


def _remember_mapping(s: Session, ctx: RunContext) -> None:
    m = ctx.mapping
    if s.get(MappingVersion, (m.name, m.version, m.fingerprint)) is None:
        s.add(MappingVersion(mapping=m.name, version=m.version, fingerprint=m.fingerprint,
                             spec_text=Path(m.file).read_text(encoding="utf-8"), first_run_id=ctx.run_id))


def _advance_watermark(s: Session, ctx: RunContext, cursor: datetime) -> datetime:
    mark = s.get(Watermark, ctx.source.name, with_for_update=True)
    if mark is None:
        s.add(Watermark(source=ctx.source.name, cursor_value=cursor, run_id=ctx.run_id))
        return cursor
    if cursor > mark.cursor_value:  # never backwards, whatever a re-run or backfill pulled
        mark.cursor_value, mark.run_id, mark.updated_at = cursor, ctx.run_id, datetime.now(timezone.utc)
    return mark.cursor_value


class _Loader:
    def __init__(self, session: Session, ctx: RunContext, keep_bodies: bool = False):
        self.s, self.ctx, self.keys = session, ctx, ctx.keys
        # idempotency key -> body of each outbox row this batch wrote, for a relay beside the load
        self.bodies: dict[str, dict] | None = {} if keep_bodies else None
        self.vendor = ctx.mapping.vendor
        self.identity = IdentityResolver(session, ctx.keys, ctx.source.name, self.vendor)
        self.conflicts: dict[str, Conflict] = {}
        self.raw_of_key: dict[str, int] = {}  # result key -> the raw payload of the version being loaded
        self.dictionary = None  # the source's payload dictionary, once it has one

    # -- raw payloads ----------------------------------------------------------------------------
    def store_raw_payloads(self, raws: list[dict]) -> list[int]:
        source = self.ctx.source.name
        ids: dict[str, int] = {}
        wanted = {r["hash"]: (self.ctx.mapping.key_of(r["payload"]) or "", r) for r in raws}

        def find(keyed: list[tuple[str, str]]) -> None:
            # Every stored version of these results (uq_raw_payload's leading columns), the wanted
            # hashes kept here: a second IN on the hash would make SQLite probe every key x hash pair.
            hashes = {h for _, h in keyed}
            ids.update((h, i) for h, i in lookup(self.s, (RawPayload.payload_hash, RawPayload.id), RawPayload.vendor_result_id,
                                                 {k for k, _ in keyed}, source=source) if h in hashes)

        for chunk in chunks([(key, h) for h, (key, _) in wanted.items()], CHUNK):
            find(chunk)
        fresh = [(h, key, r) for h, (key, r) in wanted.items() if h not in ids]
        if self.dictionary is None:  # until the source has one (hiresync.privacy.payloads)
            self.dictionary = dictionary_for(self.s, self.keys, source, self.ctx.run_id,
                                             [r["payload"] for _, _, r in fresh], self.ctx.mapping.interview_content)
        new = [dict(source=source, vendor_result_id=key, payload_hash=h, run_id=self.ctx.run_id,
                    payload_enc=seal(self.keys, source, h, jsonfast.dumpb(r["payload"]), self.dictionary))
               for h, key, r in fresh]
        for chunk in chunks(new, 2000):
            insert_rows(self.s, RawPayload.__table__, chunk)
            find([(n["vendor_result_id"], n["payload_hash"]) for n in chunk])
        return [ids[r["hash"]] for r in raws]

    # -- results ---------------------------------------------------------------------------------
    def upsert_results(self, items: list[tuple[str, dict, str]]) -> dict[str, tuple[str, int]]:
        """key -> (outcome, result id) for the newest version of each result in the batch. Items are
        (result key, canonical record, its content hash)."""
        existing = {r.vendor_result_id: r for r in map(_Stored._make, lookup(
            self.s, [getattr(InterviewResult, name) for name in _Stored._fields], InterviewResult.vendor_result_id,
            [k for k, *_ in items], vendor=self.vendor))}
        out: dict[str, tuple[str, int]] = {}
        to_insert, to_update = [], []
        for key, rec, digest in items:
            old = existing.get(key)
            if old is None:
                to_insert.append((key, rec, digest))
            elif _dt(rec["result"]["source_updated_at"]) < old.source_updated_at:
                out[key] = ("stale", old.id)  # version guard: an older version never overwrites a newer one
            elif digest == old.content_hash:
                out[key] = ("unchanged", old.id)
            else:
                to_update.append((key, rec, digest, old))
        if not to_insert and not to_update:
            return out
        candidates, conflicts = self.identity.resolve([(key, rec) for key, rec, *_ in to_insert + to_update])
        if conflicts:  # quarantined by the caller, for a person to decide
            self.conflicts.update(conflicts)
            out.update({key: ("quarantined", None) for key in conflicts})
            to_insert = [item for item in to_insert if item[0] not in conflicts]
            to_update = [item for item in to_update if item[0] not in conflicts]

        def candidate_of(rec):
            return candidates[self.identity.national_id_index(rec)]

        if to_insert:
            insert_rows(self.s, InterviewResult.__table__, [
                self._result_row(key, rec, digest, candidate_of(rec)[0], version=1) | {"first_run_id": self.ctx.run_id}
                for key, rec, digest in to_insert])
            ids = dict(lookup(self.s, (InterviewResult.vendor_result_id, InterviewResult.id),
                              InterviewResult.vendor_result_id, [k for k, *_ in to_insert], vendor=self.vendor))
            out.update({key: ("inserted", ids[key]) for key, *_ in to_insert})
        if to_update:
            results = InterviewResult.__table__
            self.s.execute(update(results).where(results.c.id == bindparam("result_id")), [
                self._result_row(key, rec, digest, candidate_of(rec)[0], version=old.version + 1) | {"result_id": old.id}
                for key, rec, digest, old in to_update])
            self.s.execute(delete(DimensionScore).where(one_of(DimensionScore.result_id, [old.id for *_, old in to_update])))
            out.update({key: ("updated", old.id) for key, _, _, old in to_update})

        changed = [(key, rec, digest, 1) for key, rec, digest in to_insert] + \
                  [(key, rec, digest, old.version + 1) for key, rec, digest, old in to_update]
        dims = [dict(result_id=out[key][1], seq=i, **d)
                for key, rec, *_ in changed for i, d in enumerate(rec["dimensions"])]
        if dims:
            insert_rows(self.s, DimensionScore.__table__, dims)
        body = {key: delivery_payload(self.vendor, key, rec, version, candidate_of(rec)[1])
                for key, rec, _, version in changed}
        self._queue_outbox(changed, out, body)
        # Workflow rules fire on a status *change*: the old status came with `existing` above.
        old_status = {key: old.status for key, _, _, old in to_update}
        queue_events(self.s, self.ctx.settings, self.keys, self.ctx.source.targets, self.ctx.run_id, [
            Change(out[key][1], candidate_of(rec)[0], old_status.get(key), rec["result"]["status"], digest, version,
                   body[key])
            for key, rec, digest, version in changed])
        return out

    def take_bodies(self) -> dict[str, dict]:
        bodies, self.bodies = self.bodies, {}
        return bodies

    def _result_row(self, key: str, rec: dict, digest: str, candidate_id: int, version: int) -> dict:
        r = rec["result"]
        video = r.get("video_url")
        return dict(
            vendor=self.vendor, vendor_result_id=key, candidate_id=candidate_id,
            position_code=r.get("position_code"), position_name=r.get("position_name"),
            department=r.get("department"), business_unit=r.get("business_unit"),
            started_at=_dt(r.get("started_at")), completed_at=_dt(r.get("completed_at")),
            overall_score=r.get("overall_score"), raw_score=r.get("raw_score"), score_scale=r.get("score_scale"),
            ai_comment=r.get("ai_comment"), recommendation=r.get("recommendation"), status=r["status"],
            video_url_enc=self.keys.encrypt(video, f"interview_results.video_url:{self.vendor}:{key}") if video else None,
            video_expires_at=_dt(r.get("video_expires_at")), report_url=r.get("report_url"),
            interviewer=r.get("interviewer"), source_updated_at=_dt(r["source_updated_at"]),
            mapping_version=rec["mapping_version"], content_hash=digest, version=version,
            last_run_id=self.ctx.run_id, updated_at=datetime.now(timezone.utc),
        )

    def _queue_outbox(self, changed, out, body: dict[str, dict]) -> None:
        """One row per target and changed result version: a reference (raw payload + mapping spec),
        rendered by the relay (hiresync.delivery.render); no second copy of the payload. `body`: result
        key -> its delivery body, kept for a relay beside the load."""
        wanted = {}
        for target in self.ctx.source.targets:
            for key, rec, digest, version in changed:
                idem = hashlib.sha256(f"{target}|{self.vendor}|{key}|{digest}".encode()).hexdigest()
                wanted[idem] = (target, key, version)
        known = set()
        for target in self.ctx.source.targets:  # (target, key): uq_outbox_idempotency's order
            mine = [idem for idem, (t, *_) in wanted.items() if t == target]
            for chunk in chunks(mine, CHUNK):
                known.update(k for (k,) in lookup(self.s, (Outbox.idempotency_key,), Outbox.idempotency_key, chunk,
                                                  target=target))
        rows = [dict(target=target, result_id=out[key][1], result_version=version, idempotency_key=idem,
                     raw_payload_id=self.raw_of_key[key], mapping_fingerprint=self.ctx.mapping.fingerprint,
                     status="pending", run_id=self.ctx.run_id)
                for idem, (target, key, version) in wanted.items() if idem not in known]
        if rows:
            insert_rows(self.s, Outbox.__table__, rows)
        if self.bodies is not None:
            self.bodies.update((idem, body[key]) for idem, (_, key, _) in wanted.items() if idem not in known)


class _Stored(NamedTuple):
    """What the load needs of a result the hub already holds."""
    id: int
    vendor_result_id: str
    source_updated_at: datetime
    content_hash: str
    version: int
    status: str


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
