"""Outbox relay throughput to a loopback batch endpoint (the group HR simulator), records/s.

The relay path per record: claim (lease) in the hub, decrypt the snapshot, apply the recipient's
data policy, shape it by the target's mapping file, POST batches with idempotency keys, record
each outcome. Baseline in the same run: the same shaped batches POSTed straight to the same
endpoint, no outbox (what delivery without any guarantee would cost). Median of --repeat runs,
each on a fresh SQLite hub and a fresh simulator.

Then the EHR SQL target alone: `EhrSqlTarget.upsert` of the same number of records (five dimensions
and four timestamps each), 500 per call, into a fresh SQLite EHR, beside the same rows, built
beforehand, written by the bulk path with nothing else to do: what shaping a record for the EHR
(labels, local times, competencies, the dimension JSON) adds to writing it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import requests

from hiresync import jsonfast
from simulators.hrtargets import GroupHRSimulator


def payload(i: int) -> dict:
    return {"candidate": {"candidate_key": f"c{i:08d}", "full_name": "测试", "national_id": "11010519491231002X",
                          "mobile": "+8613800138000", "email": "bench@example.com"},
            "result": {"result_key": f"bench:R{i:08d}", "vendor": "bench", "vendor_result_id": f"R{i:08d}", "version": 1,
                       "status": "passed", "overall_score": 80.0, "ai_comment": "表达清晰", "report_url": "https://r/x"},
            "dimensions": [{"code": "comm", "name": "沟通", "score": 80.0, "comment": None}]}


def run_relay(count: int, batch: int) -> float:
    from sqlalchemy import insert

    from hiresync.hub.models import Outbox
    from hiresync.hub.store import migrate, transaction
    from hiresync.delivery.outbox import relay
    from hiresync.privacy.pii import Keyring
    from hiresync.config.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, GroupHRSimulator() as sim:
        os.environ.update({"HIRESYNC_VAR": tmp, "HIRESYNC_HUB_URL": f"sqlite:///{tmp}/hub.db",
                           "AIRFLOW_CONN_HIRESYNC_GROUPHR": json.dumps({"conn_type": "http", "host": sim.url,
                                                                        "login": sim.client_id, "password": sim.client_secret})})
        settings = Settings.from_env()
        Keyring.generate(settings.key_file)
        keys = Keyring.load(settings.key_file)
        migrate(settings.hub_url)
        rows = []
        for i in range(count):
            idem = hashlib.sha256(f"grouphr|bench|{i}".encode()).hexdigest()
            rows.append(dict(target="grouphr", result_id=None, result_version=1, idempotency_key=idem, status="pending",
                             run_id="bench", payload_enc=keys.encrypt(jsonfast.dumps(payload(i)), f"outbox:grouphr:{idem}")))
        with transaction(settings.hub_url) as s:
            s.execute(insert(Outbox.__table__), rows)
        started = time.perf_counter()
        sent = relay(settings, keys, "grouphr", batch_size=batch)
        elapsed = time.perf_counter() - started
        assert sent == count == len(sim.records), (sent, len(sim.records))
        return count / elapsed


def run_baseline(count: int, batch: int) -> float:
    from connectors.targets.shape import Shape

    shape = Shape.load(Path(__file__).resolve().parents[1] / "mappings/targets/grouphr.yaml")
    with GroupHRSimulator() as sim, requests.Session() as session:
        token = session.post(sim.url + "/oauth/token", data={"grant_type": "client_credentials", "client_id": sim.client_id,
                                                            "client_secret": sim.client_secret}, timeout=10).json()["access_token"]
        records = [payload(i) for i in range(count)]
        started = time.perf_counter()
        for lo in range(0, count, 100):
            items = [{"idempotencyKey": f"k{lo + j}", "record": shape.render(p)} for j, p in enumerate(records[lo:lo + 100])]
            session.post(sim.url + "/api/v1/assessment-results/batch", json={"items": items}, timeout=30,
                         headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"b{lo}"}).raise_for_status()
        elapsed = time.perf_counter() - started
        assert len(sim.records) == count
        return count / elapsed


def ehr_payload(i: int) -> dict:
    p = payload(i)
    p["result"] |= {"started_at": "2026-11-03T01:37:00+00:00", "completed_at": "2026-11-03T02:07:00+00:00",
                    "source_updated_at": "2026-11-03T02:08:00+00:00", "video_expires_at": "2026-12-03T02:07:00+00:00"}
    p["dimensions"] = [{"code": f"d{j}", "name": f"维度{j}", "score": 70.0 + j, "comment": "表达清晰"} for j in range(5)]
    return p


def run_ehr(count: int, shaped: bool) -> float:
    """records/s: upserted by the target (shaped), or its rows built first and only the writes timed."""
    from datetime import datetime

    from connectors.targets.ehr_sql import (EhrSqlTarget, _candidate_row, _result_row, ehr_candidates,
                                            ehr_dimension_scores, ehr_interview_results)
    from hiresync.hub.bulk import insert_rows
    from hiresync.hub.store import engine_for

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ehr.db"
        target = EhrSqlTarget(url, engine=engine_for(url))
        batches = [[(f"k{i}", ehr_payload(i)) for i in range(lo, min(lo + 500, count))] for lo in range(0, count, 500)]
        if shaped:
            started = time.perf_counter()
            for batch in batches:
                target.upsert(batch)
        else:
            now = datetime(2026, 12, 7)
            rows = [([_candidate_row(p["candidate"], now) for _, p in batch],
                     [_result_row(p, k, now) | target.readable(p["result"]) for k, p in batch],
                     [d for _, p in batch for d in target.dimension_rows(p["result"]["result_key"], "bench", p["dimensions"])])
                    for batch in batches]
            started = time.perf_counter()
            for candidates, results, dimensions in rows:
                with target.engine.begin() as conn:
                    insert_rows(conn, ehr_candidates, candidates)
                    insert_rows(conn, ehr_interview_results, results)
                    insert_rows(conn, ehr_dimension_scores, dimensions)
        elapsed = time.perf_counter() - started
        target.engine.dispose()
        return count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=500, help="rows the relay claims at a time")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    relay_rates = [run_relay(args.records, args.batch) for _ in range(args.repeat)]
    base_rates = [run_baseline(args.records, args.batch) for _ in range(args.repeat)]
    r, b = statistics.median(relay_rates), statistics.median(base_rates)
    print(f"outbox relay -> loopback batch endpoint: {args.records} records, median of {args.repeat}")
    print(f"  relay (claim, decrypt, policy, map, POST, mark)  {r:>10,.0f} records/s")
    print(f"  baseline (same batches POSTed, no outbox)        {b:>10,.0f} records/s   relay/baseline {r / b:.2f}")
    upserts = statistics.median(run_ehr(args.records, shaped=True) for _ in range(args.repeat))
    writes = statistics.median(run_ehr(args.records, shaped=False) for _ in range(args.repeat))
    print(f"EHR SQL target (SQLite): {args.records} records of five dimensions, 500 per upsert, median of {args.repeat}")
    print(f"  upserts (shape, look up, write)                  {upserts:>10,.0f} records/s")
    print(f"  the same rows built beforehand, written alone    {writes:>10,.0f} records/s   upserts/writes {upserts / writes:.2f}")


if __name__ == "__main__":
    main()
