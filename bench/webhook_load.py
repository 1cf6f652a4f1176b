"""Webhook load: the hiring-season peak of 1,000 concurrent signed deliveries to the real receiver
on loopback, then a count in the hub: every delivery stored, exactly once, none lost.

    .venv/bin/python bench/webhook_load.py                                  # 1,000 at once, SQLite hub
    .venv/bin/python bench/webhook_load.py --count 5000 --concurrency 200 \
        --hub-url postgresql+psycopg://postgres@127.0.0.1:5432/test

A script, not a test (tests/test_webhook.py runs `run_load` with 200). Exit code 1 if any delivery
was refused, lost or stored twice. Timings are printed for orientation only: machines here are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select


def run_load(sim, url: str, hub_url: str, *, count: int, concurrency: int, source: str = "kuaipin") -> dict:
    """Emit `count` new events on the simulator, push them with `concurrency` threads, count the inbox."""
    from hiresync.hub.models import InboxDelivery
    from hiresync.hub.store import transaction

    events = sim.emit(count)
    started = time.perf_counter()
    statuses = sim.push(url, events, concurrency=concurrency)
    seconds = time.perf_counter() - started
    ids = [e["id"] for e in events]
    stored: dict[str, int] = {}
    with transaction(hub_url) as s:
        for i in range(0, len(ids), 500):
            stored.update(s.execute(select(InboxDelivery.delivery_id, func.count())
                                    .where(InboxDelivery.source == source, InboxDelivery.delivery_id.in_(ids[i:i + 500]))
                                    .group_by(InboxDelivery.delivery_id)).all())
    return {"sent": len(events), "statuses": dict(statuses), "stored": len(stored), "missing": len(events) - len(stored),
            "stored_twice": sum(1 for n in stored.values() if n > 1), "seconds": round(seconds, 2),
            "deliveries_per_second": round(len(events) / seconds, 1) if seconds else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=None, help="client threads (default: --count, all at once)")
    parser.add_argument("--hub-url", default=None, help="hub database (default: a fresh SQLite file)")
    args = parser.parse_args(argv)

    var = Path(tempfile.mkdtemp(prefix="hiresync-webhook-load-"))
    os.environ["HIRESYNC_VAR"] = str(var)
    os.environ["HIRESYNC_HUB_URL"] = args.hub_url or f"sqlite:///{var / 'hub.db'}"
    from hiresync.hub.store import migrate
    from hiresync.privacy.pii import Keyring
    from hiresync.config.settings import Settings
    from hiresync.ingest.webhook import WebhookReceiver
    from simulators.kuaipin import KuaiPinSimulator

    settings = Settings.from_env()
    Keyring.generate(settings.key_file)
    migrate(settings.hub_url)
    sim = KuaiPinSimulator(count=args.count, defect_rate=0)
    os.environ["AIRFLOW_CONN_HIRESYNC_KUAIPIN_WEBHOOK"] = json.dumps({"conn_type": "http", "password": sim.signing_secret})
    with WebhookReceiver(settings, ["kuaipin"]) as receiver:
        report = run_load(sim, receiver.url_for("kuaipin"), settings.hub_url, count=args.count,
                          concurrency=args.concurrency or args.count)
    print(json.dumps(report, indent=2))
    ok = report["statuses"] == {200: args.count} and report["missing"] == 0 and report["stored_twice"] == 0
    print("none lost, none stored twice" if ok else "FAILED: deliveries refused, lost or stored twice")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
    sys.exit(main())
