"""End-to-end throughput: simulator -> extract -> validate -> map -> load -> deliver, per hub database.

Each measured run is a fresh process (so peak memory is that run's own) on a fresh hub. Beside it,
in the same invocation, a baseline: merely pulling the same pages from the simulator, which is the
ceiling any pipeline run could reach. Reported: medians over --repeat runs, the time in each stage,
peak RSS, and the ratio to the baseline. This is a script, not a test: machines here are noisy.

    make bench                                   # 100,000 results, SQLite + PostgreSQL if reachable
    make bench BENCH_ARGS="--count 20000 --repeat 3 --db sqlite"
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def worker(args) -> dict:
    """One measured run in this process; prints a JSON line."""
    from simulators.aiview import AIViewSimulator

    with AIViewSimulator(count=args.count, seed=3, page_limit_max=1000) as sim:
        os.environ["AIRFLOW_CONN_HIRESYNC_AIVIEW"] = json.dumps(
            {"conn_type": "http", "host": sim.url, "login": sim.client_id, "password": sim.client_secret})
        if args.mode == "baseline":
            return {"seconds": _pull_only(sim), "stages": {}, "pulled": len(sim)}
        from hiresync.hub.store import migrate
        from hiresync.privacy.pii import Keyring
        from hiresync.pipeline.runner import run_source
        from hiresync.config.settings import Settings

        settings = Settings.from_env()
        Keyring.generate(settings.key_file)
        migrate(settings.hub_url)
        import great_expectations  # noqa: F401 - a one-off import cost, not throughput

        stages, last = {}, [time.perf_counter()]

        def on_step(name: str, _result: dict) -> None:
            now = time.perf_counter()
            stages[name] = now - last[0]
            last[0] = now

        started = time.perf_counter()
        summary = run_source("aiview", settings, on_step=on_step)
        return {"seconds": time.perf_counter() - started, "stages": stages, "pulled": summary["pulled"],
                "quarantined": summary["quarantined"]}


def _pull_only(sim) -> float:
    from connectors.rest.profile import RestProfile
    from connectors.rest.source import RestSource
    from hiresync.config.connections import get_connection
    from hiresync.config.settings import Settings

    profile = RestProfile.load(Settings.from_env().home / "connectors/profiles/aiview.yaml")
    source = RestSource(profile, get_connection(profile.connection))
    started = time.perf_counter()
    n = sum(len(page) for page in source.pages(profile.start))
    assert n == len(sim)
    return time.perf_counter() - started


def _one(db: str, mode: str, count: int, hub_url: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="hiresync-bench-") as tmp:
        env = dict(os.environ, HIRESYNC_VAR=tmp, GX_ANALYTICS_ENABLED="False")
        env.pop("HIRESYNC_KEYS", None)
        if hub_url:
            env["HIRESYNC_HUB_URL"] = hub_url
        else:
            env.pop("HIRESYNC_HUB_URL", None)
        out = subprocess.run([sys.executable, __file__, "--worker", "--mode", mode, "--count", str(count)],
                             env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{db} {mode} run failed:\n{out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def _server_db(base: str):
    """A throwaway database on the server, or None if the server is not reachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        name = f"hiresync_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001
        print(f"  (skipping {make_url(base).get_backend_name()}: {type(exc).__name__})")
        return None, None

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if admin.dialect.name == "postgresql" else "")))

    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    p.add_argument("--pg-url", default=os.environ.get("HIRESYNC_TEST_PG_URL", DEFAULT_PG))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="pipeline", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        result = worker(args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    print(f"HireSync end-to-end benchmark: {args.count:,} simulated results, median of {args.repeat} runs each")
    baseline = [_one("baseline", "baseline", args.count, None) for _ in range(args.repeat)]
    base_s = statistics.median(r["seconds"] for r in baseline)
    base_rate = baseline[0]["pulled"] / base_s
    print(f"\nbaseline (pull pages only, no processing): {base_rate:,.0f} results/s  ({base_s:.1f} s)")
    for db in args.db or ["sqlite", "postgresql"]:
        url, drop = (None, None) if db == "sqlite" else _server_db(args.pg_url)
        if db != "sqlite" and url is None:
            continue
        runs = []
        try:
            for _ in range(args.repeat):
                if drop:  # every run starts on an empty hub
                    drop()
                    url, drop = _server_db(args.pg_url)
                runs.append(_one(db, "pipeline", args.count, url))
        finally:
            if drop:
                drop()
        seconds = statistics.median(r["seconds"] for r in runs)
        rate = runs[0]["pulled"] / seconds
        print(f"\n{db}: {rate:,.0f} results/s end to end  ({seconds:.1f} s for {runs[0]['pulled']:,} pulled, "
              f"{runs[0]['quarantined']:,} quarantined)  = {rate / base_rate:.2f} x baseline")
        for stage in runs[0]["stages"]:
            s = statistics.median(r["stages"][stage] for r in runs)
            print(f"  {stage:<9} {s:7.2f} s  {runs[0]['pulled'] / s:>10,.0f} results/s  {s / seconds:5.1%}")
        print(f"  peak memory (RSS, median) {statistics.median(r['peak_rss_mb'] for r in runs):,.0f} MB")


if __name__ == "__main__":
    main()
