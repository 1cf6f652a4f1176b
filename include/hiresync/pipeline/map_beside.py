"""Mapping beside the map step: a second process maps some of a large run's batches while the map
step maps the others (hiresync.pipeline.batches_beside: two of every three).

Validation and mapping run one after the other on one core, and the relay starts only with the
load, so the machine's other core is idle through the map step. A mapped batch depends on its
payloads and the spec alone (`mapped_batch`: MappingSpec.map and each record's content hash), so
which process maps it changes nothing that is staged: the map step still stages every batch, in
order, and judges them all with the canonical suite and for drift. For each batch it maps the
helper also does what the step would do next with the records (`Helped`): seals the mapped batch
as its line in the staging file, and builds the batch's columns for the canonical suite. The step
writes that line as it comes and adds the columns to its window: it never builds those records
itself (their serialising, encrypting and column building were about a fifth of the step's own
work). Nothing crosses the pipe that the records did not hold before.

The helper maps with the mapping file the step read; one that changed since (its fingerprint
differs) it refuses, and the step maps every batch itself. With the heap trimmed after each step
(hiresync/heap.py), the run's peak with this helper is what it was without (docs/benchmarks.md;
`bench/end_to_end.py --worker` prints the process's RSS after each step). Started only from
`map_beside_rows` rows on (`beside_when`).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple

from hiresync.config.settings import Settings
from hiresync.contract import canonical_suite
from hiresync.ingest.staging import Staging
from hiresync.mapping.spec import MappingSpec, content_hash
from hiresync.pipeline.batches_beside import BatchesBeside, serve
from hiresync.privacy.pii import Keyring

# (row, canonical record) pairs, row -> problems, and the records' content hashes
Mapped = tuple[list[tuple[int, dict]], dict[int, list[dict]], list[str]]


class Helped(NamedTuple):
    """A batch the helper mapped, as the map step uses it."""
    line: str                          # the mapped batch sealed as its line in the staging file
    mapped: int                        # the records in it
    problems: dict[int, list[dict]]    # row -> the mapping's problems with it
    columns: dict[str, list]           # the records' columns for the canonical suite


def staged_rows(mapped: list[tuple[int, dict]], digests: list[str]) -> list[dict]:
    """A mapped batch as staged: each record with its row and content hash (the canonical suite
    needs the hash in the map step, the version guard in the load)."""
    return [{"row": row, "record": rec, "digest": digest} for (row, rec), digest in zip(mapped, digests)]


def mapped_batch(mapping: MappingSpec, batch: list[dict], start: int, skip: set[int]) -> Mapped:
    """One staged batch mapped, its rows numbered from `start`; rows in `skip` are left out."""
    mapped: list[tuple[int, dict]] = []
    problems: dict[int, list[dict]] = {}
    for row, raw in enumerate(batch, start=start):
        if row in skip:
            continue
        record, errs = mapping.map(raw["payload"])
        if errs:
            problems[row] = [e.as_dict() for e in errs]
        else:
            mapped.append((row, record))
    return mapped, problems, [content_hash(record) for _, record in mapped]


class MapBeside(BatchesBeside):
    """`with MapBeside(...) as helper:` around the map step's batches; `helper.result(i)` is batch i
    as the helper mapped it (`Helped`), or None when the step must map it itself."""

    def __init__(self, staging: Staging, keys: Keyring, mapping: MappingSpec, skip: set[int]):
        super().__init__(__name__, "_serve", str(staging.dir.parent), staging.run_id, keys, staging.batch_size,
                         mapping.file, mapping.fingerprint, sorted(skip))


def beside_when(settings: Settings, staging: Staging, keys: Keyring, mapping: MappingSpec, skip: set[int],
                rows: int) -> "MapBeside | nullcontext":
    """`with beside_when(...) as helper:` a helper for a run of `rows` rows, or nothing (None)
    below `map_beside_rows` (0: never)."""
    if not settings.map_beside_rows or rows < settings.map_beside_rows:
        return nullcontext()
    return MapBeside(staging, keys, mapping, skip)


def _serve(staging_root: str, run_id: str, keys: Keyring, batch_size: int, mapping_file: str, fingerprint: str,
           skip: list[int], conn) -> None:
    """The helper: maps its batches in order and sends each, until done or the step closes the pipe."""
    from hiresync.heap import freeze_imports

    mapping = MappingSpec.load(Path(mapping_file))
    if mapping.fingerprint != fingerprint:  # the file changed since the step read it: the step maps all
        return
    freeze_imports()
    staging = Staging(Path(staging_root), run_id, keys, batch_size)
    failed = set(skip)

    def batches():
        rows = 0
        for index, (batch, known) in enumerate(zip(staging.read_batches("raw"), staging.read_batches("known"))):
            yield index, batch, known, rows
            rows += len(batch)

    def work(item) -> Helped:
        index, batch, known, rows = item
        mapped, problems, digests = mapped_batch(mapping, batch, rows, failed | {k["row"] for k in known})
        return Helped(staging.seal("mapped", index, staged_rows(mapped, digests)), len(mapped), problems,
                      canonical_suite.frame_columns(mapped, mapping, digests))

    serve(conn, batches(), work)
