"""Mapping beside the map step: a second process maps some of a large run's batches while the map
step maps the others.

Validation and mapping run one after the other on one core, and the relay starts only with the
load, so the machine's other core is idle through the map step. A mapped batch depends on its
payloads and the spec alone (`mapped_batch`: MappingSpec.map and each record's content hash), so
which process maps it changes nothing that is staged: the map step still stages every batch, in
order, and judges them all with the canonical suite and for drift. The helper reads the run's
staged batches itself (it has the key) and maps those `helps` gives it, two of every three. For each
it also does what the step would do next with the records (`Helped`): seals the mapped batch as its
line in the staging file, and builds the batch's columns for the canonical suite. The step writes
that line as it comes and adds the columns to its window: it never builds those records itself
(their serialising, encrypting and column building were about a fifth of the step's own work).
Nothing crosses the pipe that the records did not hold before.

What waits for the step is each batch's bytes, as the helper sent them (only the helper this step
started writes to the pipe, so unpickling them trusts no one else); the step unpickles a batch
when it takes it. Objects built in the receiving thread, ahead of the step and among its own
allocations, kept the process larger through the load, beside its relay (at 100,000 results its
peak was 302 MB against 279 without the helper); with bytes waiting and the heap trimmed after each
step (hiresync/heap.py), 277 MB (docs/benchmarks.md; `bench/end_to_end.py --worker` prints the
process's RSS after each step).

A helper that stops early (it died, or refused a mapping file that changed since the step read it)
leaves its batches to the map step, which maps what the helper did not send; a step that ends early
(a failure) tells the helper to stop, which it does after its current batch. Started only from
`map_beside_rows` rows on (`beside_when`): the process start costs about a second.
"""

from __future__ import annotations

import pickle
import subprocess
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple

from hiresync.config.settings import Settings
from hiresync.contract import canonical_suite
from hiresync.helper_process import start_helper
from hiresync.ingest.staging import Staging
from hiresync.mapping.spec import MappingSpec, content_hash
from hiresync.privacy.pii import Keyring

EVERY = 3  # of every EVERY batches the helper maps all but the first
AHEAD = 2  # mapped batches held for the step at most (the helper blocks on the pipe meanwhile)
STOP_SECONDS = 30  # the most the step waits for the helper to end after the last batch

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


def helps(index: int) -> bool:
    """Whether the helper maps batch number `index`."""
    return index % EVERY != 0


class MapBeside:
    """`with MapBeside(...) as helper:` around the map step's batches; `helper.result(i)` is batch i
    as `mapped_batch` gives it, or None when the step must map it itself."""

    def __init__(self, staging: Staging, keys: Keyring, mapping: MappingSpec, skip: set[int]):
        self._args = (str(staging.dir.parent), staging.run_id, keys, staging.batch_size, mapping.file,
                      mapping.fingerprint, sorted(skip))
        self._results: dict[int, bytes] = {}  # batch index -> the pickled `Helped` the helper sent
        self._ended = self._closing = False
        self._changed = threading.Condition()

    def __enter__(self) -> "MapBeside":
        self._process, self._conn = start_helper(__name__, "_serve", *self._args)
        self._receiver = threading.Thread(target=self._receive, name="map-beside", daemon=True)
        self._receiver.start()
        return self

    def _receive(self) -> None:
        """Results as the helper sends them: it works ahead while the step stages and judges."""
        try:
            while True:
                with self._changed:  # no further ahead than AHEAD batches: memory stays bounded by them
                    self._changed.wait_for(lambda: len(self._results) < AHEAD or self._closing)
                index = self._conn.recv()
                mapped = self._conn.recv_bytes()
                with self._changed:
                    if not self._closing:  # else dropped: read only so that the helper can go on to stop
                        self._results[index] = mapped
                    self._changed.notify_all()
        except (EOFError, OSError):  # it ended: done, refused the mapping, or died
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def result(self, index: int) -> Helped | None:
        with self._changed:
            self._changed.wait_for(lambda: index in self._results or self._ended)
            found = self._results.pop(index, None)
            self._changed.notify_all()
        return None if found is None else pickle.loads(found)

    def __exit__(self, *exc) -> None:
        # Told to stop (after its current batch: it may still have some when the step failed), then
        # its end of the pipe closes with it and the receiver sees the end; only then is ours closed.
        # Meanwhile the receiver reads what it still sends: a helper blocked on a full pipe while the
        # receiver waited for the step to take its results would never stop.
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        try:
            self._conn.send("stop")
        except OSError:  # it ended already
            pass
        try:
            self._process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:  # stuck: it holds nothing the run needs
            self._process.kill()
            self._process.wait()
        self._receiver.join()
        self._conn.close()


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
    failed, rows = set(skip), 0
    for index, (batch, known) in enumerate(zip(staging.read_batches("raw"), staging.read_batches("known"))):
        if conn.poll():  # the step said stop (it has every batch, or failed), or is gone
            return
        if helps(index):
            mapped, problems, digests = mapped_batch(mapping, batch, rows, failed | {k["row"] for k in known})
            helped = Helped(staging.seal("mapped", index, staged_rows(mapped, digests)), len(mapped), problems,
                            canonical_suite.frame_columns(mapped, mapping, digests))
            try:
                conn.send(index)
                conn.send_bytes(pickle.dumps(helped, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:
                return
        rows += len(batch)
