"""Encryption + blind indexing throughput: what protecting one candidate record costs.

Per record, as the load step does it: AES-256-GCM for name, resident ID, phone and email (row-bound
associated data), keyed HMAC blind indexes for ID, phone and email, and the masks. Baseline in the
same run: a plain SHA-256 of the same four values (what an unkeyed, unencrypted design would pay).
Median of --repeat runs; ratios, not absolute numbers, travel between machines.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from hiresync.privacy import pii
from simulators.aiview import AIViewSimulator


def people(count: int) -> list[dict]:
    return [r["candidate"] for r in AIViewSimulator(count=count, seed=5, defect_rate=0, rescore_rate=0).records()]


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
    data = people(args.count)
    base = statistics.median(timed(baseline, data) for _ in range(args.repeat))
    prot = statistics.median(timed(protect, keys, data) for _ in range(args.repeat))
    print(f"PII protection, {args.count:,} candidate records, median of {args.repeat}")
    print(f"  baseline (plain SHA-256 x4):          {args.count / base:>10,.0f} records/s")
    print(f"  encrypt x4 + blind index x3 + masks:  {args.count / prot:>10,.0f} records/s  "
          f"({prot / base:.1f}x the baseline's time)")


if __name__ == "__main__":
    main()
