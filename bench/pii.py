"""Encryption + blind indexing throughput: what protecting one candidate record costs.

Per record, as the load step does it: AES-256-GCM for name, resident ID, phone and email (row-bound
associated data), keyed HMAC blind indexes for ID, phone and email, and the masks. Baseline in the
same run: a plain SHA-256 of the same four values (what an unkeyed, unencrypted design would pay).
Median of --repeat runs; ratios, not absolute numbers, travel between machines.

Then what storing a whole payload costs: each simulated AIView result compressed and encrypted as
the load stores it (zstd, level 1, against the source's dictionary, trained as the load trains it on
the first 2,000 results' interview content: hiresync.privacy.payloads), beside the same without a
dictionary (what a source has before its first 1,000 payloads), its compression alone with zstd and
with zlib at level 1 (what HireSync used before), with the bytes each leaves per payload. The
simulator's comments come from stock phrases: real payloads gain less from a dictionary.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import zstandard

from hiresync import jsonfast
from hiresync.mapping.spec import MappingSpec
from hiresync.privacy import payloads as payloads_, pii
from simulators.aiview import AIViewSimulator


def results(count: int) -> list[dict]:
    return AIViewSimulator(count=count, seed=5, defect_rate=0, rescore_rate=0).records()


def protect(keys: pii.Keyring, people: list[dict]) -> None:
    for i, c in enumerate(people):
        ck = f"cand-{i}"
        for field, hub_field in (("name", "full_name"), ("id_card", "national_id"), ("mobile", "mobile"), ("email", "email")):
            keys.encrypt(c[field], f"candidates.{hub_field}:{ck}")
        for field, hub_field in (("id_card", "national_id"), ("mobile", "mobile"), ("email", "email")):
            keys.blind_index(c[field], hub_field)
        pii.mask_national_id(c["id_card"]), pii.mask_mobile(c["mobile"]), pii.mask_email(c["email"]), pii.mask_name(c["name"])


def baseline(people: list[dict]) -> None:
    for c in people:
        for field in ("name", "id_card", "mobile", "email"):
            hashlib.sha256(c[field].encode()).hexdigest()


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pii.Keyring.generate(Path(tmp) / "k.json")
        keys = pii.Keyring.load(Path(tmp) / "k.json")
    records = results(args.count)
    data = [r["candidate"] for r in records]
    base = statistics.median(timed(baseline, data) for _ in range(args.repeat))
    prot = statistics.median(timed(protect, keys, data) for _ in range(args.repeat))
    print(f"PII protection, {args.count:,} candidate records, median of {args.repeat}")
    print(f"  baseline (plain SHA-256 x4):          {args.count / base:>10,.0f} records/s")
    print(f"  encrypt x4 + blind index x3 + masks:  {args.count / prot:>10,.0f} records/s  "
          f"({prot / base:.1f}x the baseline's time)")

    payloads = [jsonfast.dumpb(r) for r in records]
    zstd = zstandard.ZstdCompressor(level=1)
    def stored(token: str) -> bytes:  # what the hub's column holds: the token's bytes (hub.models.Ciphertext)
        head, _, body = token.partition(":")
        return head.encode() + b":" + base64.b64decode(body)

    spec = MappingSpec.load(Path(__file__).resolve().parent.parent / "mappings" / "aiview.yaml")
    dictionary = zstandard.train_dictionary(payloads_.DICTIONARY_BYTES, [
        jsonfast.dumpb(spec.interview_content(r)) for r in records[:payloads_.SAMPLES]])
    ways = {
        "with the dictionary, encrypted (as stored)":
            lambda b: stored(payloads_.seal(keys, "bench", "h", b, dictionary)),
        "no dictionary, encrypted (before 1,000 payloads)":
            lambda b: stored(payloads_.seal(keys, "bench", "h", b, None)),
        "zstd level 1, compression alone": zstd.compress,
        "zlib level 1, compression alone (before)": lambda b: zlib.compress(b, 1),
    }
    print(f"\nwhole payloads, {args.count:,} AIView results of {sum(map(len, payloads)) / len(payloads):,.0f} bytes "
          f"on average, median of {args.repeat}")
    for name, way in ways.items():
        seconds = statistics.median(timed(lambda: [way(b) for b in payloads]) for _ in range(args.repeat))
        size = sum(len(way(b)) for b in payloads) / len(payloads)
        print(f"  {name:<48} {seconds / len(payloads) * 1e6:>7.1f} µs per payload  {size:>7,.0f} bytes")


if __name__ == "__main__":
    main()
