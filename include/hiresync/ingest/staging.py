"""Run-scoped staging files under var/staging/<run>/: how the steps hand work to each other.

Airflow tasks pass the run id, never data. Records are staged in micro-batches: one line per
batch, the batch serialised once and encrypted once (AES-GCM, bound to the run, the file and the
batch's position, so batches cannot be swapped or replayed into another run). Every step reads
and writes batch by batch, so a run's memory is bounded by one batch, not by the run. Small
manifests and reason lists are plain JSON (keys, fields, rules, masked values only).
"""

from __future__ import annotations

import json
import re
import shutil
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from hiresync import jsonfast
from hiresync.privacy.pii import Keyring

DEFAULT_BATCH = 2000


class Staging:
    def __init__(self, root: Path, run_id: str, keys: Keyring, batch_size: int = DEFAULT_BATCH):
        self.dir = root / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
        self.run_id = run_id
        self.batch_size = batch_size
        self._keys = keys

    def _context(self, name: str, index: int) -> str:
        return f"staging:{self.run_id}:{name}:{index}"

    @contextmanager
    def writer(self, name: str) -> Iterator["BatchWriter"]:
        """Write batches one at a time; the file appears whole (renamed into place) or not at all."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{name}.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            w = BatchWriter(self, name, f)
            yield w
        tmp.replace(self.dir / f"{name}.enc")  # readers never see a half-written file

    def write_records(self, name: str, records: Iterable[dict]) -> int:
        """Records from any iterable (a generator stays lazy), cut into batches of `batch_size`."""
        it = iter(records)
        with self.writer(name) as w:
            while batch := list(islice(it, self.batch_size)):
                w.write(batch)
        return w.count

    def seal(self, name: str, index: int, batch: list[dict]) -> str:
        """Batch number `index` of file `name` as its line in the file: serialised, compressed and
        encrypted once, bound to the run, the file and the position."""
        return self._keys.encrypt(jsonfast.dumpb(batch), self._context(name, index), compress=True)

    def read_batches(self, name: str, skip: int = 0) -> Iterator[list[dict]]:
        """The batches in order, from batch number `skip` on (those before it are not decrypted)."""
        for index, line in self.sealed_batches(name):
            if index >= skip:
                yield self.open_batch(name, index, line)

    def sealed_batches(self, name: str) -> Iterator[tuple[int, str]]:
        """(batch number, its line) in order, not decrypted: for a step that opens only some of them
        (`open_batch`) and has the others' work done elsewhere."""
        with (self.dir / f"{name}.enc").open(encoding="utf-8") as f:
            for index, line in enumerate(f):
                yield index, line.rstrip("\n")

    def open_batch(self, name: str, index: int, line: str) -> list[dict]:
        """Batch number `index` of file `name` from its line: decrypted and parsed."""
        return jsonfast.loads(self._keys.decrypt_bytes(line, self._context(name, index)))

    def read_records(self, name: str) -> Iterator[dict]:
        for batch in self.read_batches(name):
            yield from batch

    def write_json(self, name: str, doc) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{name}.json.tmp"
        tmp.write_text(json.dumps(doc, ensure_ascii=False, default=str), encoding="utf-8")
        tmp.replace(self.dir / f"{name}.json")

    def read_json(self, name: str):
        return json.loads((self.dir / f"{name}.json").read_text(encoding="utf-8"))

    def exists(self, name: str) -> bool:
        return (self.dir / f"{name}.json").exists() or (self.dir / f"{name}.enc").exists()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class BatchWriter:
    def __init__(self, staging: Staging, name: str, file):
        self._staging, self._name, self._file = staging, name, file
        self.batches = 0
        self.count = 0

    def write(self, batch: list[dict]) -> None:
        """One batch, as given (the caller decides its size: a mapped batch mirrors its raw batch)."""
        self.write_sealed(self._staging.seal(self._name, self.batches, batch), len(batch))

    def write_sealed(self, line: str, count: int) -> None:
        """One batch of `count` records sealed already (Staging.seal, for this file and position):
        by a helper process beside the step, which has the key."""
        self._file.write(line)
        self._file.write("\n")
        self.batches += 1
        self.count += count
