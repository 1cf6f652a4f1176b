"""Downstream of every sync: runs whenever a source's results Asset is updated, and reads what the
run did from the Asset event's `extra` (run id, pulled, inserted, updated, unchanged, quarantined,
delivered), without touching the hub. An example to build on: a report for HR, a refresh of a
dashboard, a check that a source delivered what it pulled."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from functools import reduce
from operator import or_
from pathlib import Path

from airflow.sdk import dag, get_current_context, task

from hiresync.config.sources import check_sources

HOME = Path(os.environ.get("HIRESYNC_HOME", Path(__file__).resolve().parents[1]))
SOURCES_FILE = Path(os.environ.get("HIRESYNC_SOURCES", HOME / "sources.yaml"))
COUNTS = ("pulled", "inserted", "updated", "unchanged", "quarantined", "delivered")


def _results_asset(source: str):
    from airflow.sdk import Asset

    # The same Asset the sync DAG's publish task updates (dags/hiresync_sync.py, results_asset).
    return Asset(uri=f"hiresync://hub/interview_results/{source}", name=f"hiresync_{source}_results")


def digest_lines(triggering_asset_events) -> tuple[list[str], dict]:
    """One line per event (counts only) and the totals over them."""
    lines, totals = [], dict.fromkeys(COUNTS, 0)
    for events in triggering_asset_events.values():
        for event in events:
            extra = event.extra or {}
            source = extra.get("source") or event.asset.uri.rsplit("/", 1)[-1]
            if not all(isinstance(extra.get(k), int) for k in COUNTS):
                lines.append(f"{source}: an event with no counts (an older HireSync, or set by hand)")
                continue
            for k in COUNTS:
                totals[k] += extra[k]
            lines.append(f"{source} run {extra.get('run_id')}: " + ", ".join(f"{k} {extra[k]}" for k in COUNTS))
    return lines, totals


_SOURCES = sorted(check_sources(SOURCES_FILE, HOME)["sources"])


@dag(
    dag_id="hiresync_results_digest",
    description="Example downstream DAG: what each sync run did, read from its Asset event",
    schedule=reduce(or_, (_results_asset(name) for name in _SOURCES)),  # any source's new results
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hiresync", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "show_return_value_in_logs": False},
    doc_md=__doc__,
)
def results_digest():
    @task
    def digest() -> dict:
        import logging

        lines, totals = digest_lines(get_current_context()["triggering_asset_events"])
        for line in lines:
            logging.getLogger("hiresync.run").info(line)
        return totals

    digest()


results_digest()
