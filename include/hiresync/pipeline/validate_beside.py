"""Validation beside the validate step: a second process prepares some of a large run's batches for
the raw suite while the step prepares the others (hiresync.pipeline.batches_beside: two of every
three).

The validate step runs on one core with the other idle (extract is done, the map step's helper has
not started). Before Great Expectations judges a window, each batch is opened (decrypted, parsed),
its payloads the hub already holds set aside (`known`), the defects found while pulling taken as
failures, and the rest put in the raw suite's columns: more than half of the step's work, and
none of it depends on another batch (`prepare_batch`). The helper does that for its batches and
sends the result; the step never opens those batches, adds their columns to its window and judges
every window itself, so Great Expectations is imported in the step's process only, and what the
step stages and reports is the same either way.

The helper uses the mapping file the step read; one that changed since (its fingerprint differs)
it refuses, and the step prepares every batch itself. Started only from `validate_beside_rows`
rows on (`beside_when`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple

from hiresync.config.settings import Settings
from hiresync.contract.raw_suite import frame_columns
from hiresync.hub.store import transaction
from hiresync.ingest.staging import Staging
from hiresync.load.known import known_payloads
from hiresync.mapping.spec import MappingSpec
from hiresync.pipeline.batches_beside import BatchesBeside, serve
from hiresync.privacy.pii import Keyring

# (vendor result id, payload hash) pairs -> the hashes of those the hub already holds
KnownOf = Callable[[list[tuple[str, str]]], set[str]]


def known_in(hub_url: str, source: str, mapping: MappingSpec) -> KnownOf:
    """The hub's loaded payloads of `source` under `mapping` (hiresync.load.known), looked up per
    batch in a read-only transaction of its own: the step's and the helper's lookups alike."""
    def known_of(keyed: list[tuple[str, str]]) -> set[str]:
        with transaction(hub_url) as s:
            return set(known_payloads(s, source, mapping, keyed))
    return known_of


class Prepared(NamedTuple):
    """A raw batch made ready for the raw suite."""
    rows: int                          # the records in the batch
    known: list[dict]                  # its `known` batch: {row, hash} of payloads the hub holds
    failures: dict[int, list[dict]]    # row -> [the defect found while pulling]
    columns: dict[str, list]           # the raw suite's columns of the other rows


def prepare_batch(mapping: MappingSpec, batch: list[dict], start: int, known_of: KnownOf | None) -> Prepared:
    """One staged raw batch, its rows numbered from `start`; `known_of` None judges every payload
    (a replay, or a mapping whose spec changed without a new version)."""
    keyed = [(mapping.key_of(r["payload"]) or "", r["hash"]) for r in batch] if known_of else []
    held = known_of(keyed) if keyed else set()
    known = [{"row": row, "hash": h} for row, (_, h) in enumerate(keyed, start=start) if h in held]
    skip = {k["row"] for k in known}
    failures = {}
    for row, r in enumerate(batch, start=start):
        if row not in skip and r.get("defect"):  # found while pulling (hiresync.ingest.bounds)
            failures[row] = [r["defect"]]
            skip.add(row)
    todo = [(row, r["payload"]) for row, r in enumerate(batch, start=start) if row not in skip]
    return Prepared(len(batch), known, failures, frame_columns([p for _, p in todo], mapping, [row for row, _ in todo]))


class ValidateBeside(BatchesBeside):
    """`with ValidateBeside(...) as helper:` around the validate step's batches; `helper.result(i)`
    is batch i as the helper prepared it (`Prepared`), or None when the step must do it itself."""

    def __init__(self, settings: Settings, staging: Staging, keys: Keyring, source: str, mapping: MappingSpec,
                 skip_known: bool):
        super().__init__(__name__, "_serve", settings.hub_url, str(staging.dir.parent), staging.run_id, keys,
                         staging.batch_size, source, mapping.file, mapping.fingerprint, skip_known)


def beside_when(settings: Settings, staging: Staging, keys: Keyring, source: str, mapping: MappingSpec,
                skip_known: bool, rows: int) -> "ValidateBeside | nullcontext":
    """`with beside_when(...) as helper:` a helper for a run of `rows` rows, or nothing (None)
    below `validate_beside_rows` (0: never)."""
    if not settings.validate_beside_rows or rows < settings.validate_beside_rows:
        return nullcontext()
    return ValidateBeside(settings, staging, keys, source, mapping, skip_known)


def _serve(hub_url: str, staging_root: str, run_id: str, keys: Keyring, batch_size: int, source: str,
           mapping_file: str, fingerprint: str, skip_known: bool, conn) -> None:
    """The helper: prepares its batches in order and sends each, until done or the step closes the pipe."""
    from hiresync.heap import freeze_imports

    mapping = MappingSpec.load(Path(mapping_file))
    if mapping.fingerprint != fingerprint:  # the file changed since the step read it: the step does all
        return
    freeze_imports()
    staging = Staging(Path(staging_root), run_id, keys, batch_size)
    known_of = known_in(hub_url, source, mapping) if skip_known else None

    def batches():
        rows = 0
        for batch in staging.read_batches("raw"):
            yield batch, rows
            rows += len(batch)

    serve(conn, batches(), lambda item: prepare_batch(mapping, *item, known_of))
