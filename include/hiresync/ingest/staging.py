"""Run-scoped staging files under var/staging/<run>/: how the steps hand work to each other.

Airflow tasks pass the run id, never data. Records are written one encrypted JSON document per
line (they hold personal data); small manifests and reason lists are plain JSON (keys, fields,
rules, masked values only).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from hiresync import jsonfast
from hiresync.privacy.pii import Keyring


class Staging:
    def __init__(self, root: Path, run_id: str, keys: Keyring):
        self.dir = root / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
        self.run_id = run_id
        self._keys = keys
        self._context = f"staging:{run_id}"

    def write_records(self, name: str, records: Iterable[dict]) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{name}.tmp"
        n = 0
        with tmp.open("w", encoding="utf-8") as f:
            for rec in records:
                f.write(self._keys.encrypt(jsonfast.dumps(rec), self._context))
                f.write("\n")
                n += 1
        tmp.replace(self.dir / f"{name}.enc")  # readers never see a half-written file
        return n

    def read_records(self, name: str) -> Iterator[dict]:
        with (self.dir / f"{name}.enc").open(encoding="utf-8") as f:
            for line in f:
                yield jsonfast.loads(self._keys.decrypt(line.rstrip("\n"), self._context))

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
