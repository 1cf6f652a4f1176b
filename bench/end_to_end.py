"""End-to-end throughput: simulator -> extract -> validate -> map -> load -> deliver, per hub database.

Each measured run is a fresh process (so peak memory is that run's own) on a fresh hub. Beside it,
in the same invocation, three references on the same machine and database:
  pull    merely pulling and parsing the same pages from the simulator;
  floor   pull + parse + ONE bulk insert of the same rows (payload as JSON text) into the same
          database: what a loader that does no validation, mapping, encryption or lineage costs;
  rows alone   after each pipeline run, every row it left in the hub and the EHR (about 17 per
          result) written again into empty databases of the same schema by the database alone (no
          client work), plus pull + parse: what keeping HireSync's data costs before any of the
          work that produces it, a bound for any engine that keeps those rows.
Reported: medians over --repeat runs, results/s end to end and the ratio to the floor, the time in
each stage with the CPU the pipeline's process spent in it, the CPU per result of each process (the
pipeline, the helpers beside the validate and map steps and the load, a local database server, the
simulator) and the rate that CPU would allow with every core busy, peak RSS, and the hub's size on
disk per result. This is a script, not a test: machines here are noisy, so read the ratios.

    make bench                                   # 100,000 results, SQLite + PostgreSQL if reachable
    make bench BENCH_ARGS="--count 20000 --repeat 3 --db sqlite"
    make bench BENCH_ARGS="--count 1000000 --repeat 1 --db sqlite"   # the flat-memory check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def worker(args) -> dict:
    """One measured run in this process; prints a JSON line. The simulator runs in a process of its
    own, so the peak memory measured here is the pipeline's alone."""
    if args.mode == "rows":  # in the finished run's HIRESYNC_VAR / hub, after it
        return _rows_alone()
    with _simulator(args.count) as (url, client_id, secret, versions, simulator_pid):
        os.environ["AIRFLOW_CONN_HIRESYNC_AIVIEW"] = json.dumps(
            {"conn_type": "http", "host": url, "login": client_id, "password": secret})
        if args.mode == "baseline":
            return {"seconds": _pull_only(versions), "stages": {}, "pulled": versions}
        if args.mode == "floor":
            return {"seconds": _floor(), "stages": {}, "pulled": versions}
        from hiresync.hub.store import migrate
        from hiresync.privacy.pii import Keyring
        from hiresync.pipeline.runner import run_source
        from hiresync.config.settings import Settings

        settings = Settings.from_env()
        Keyring.generate(settings.key_file)
        migrate(settings.hub_url)
        from hiresync.contract.gx_import import import_gx

        import_gx()  # a one-off import cost, not throughput; as the pipeline imports it

        stages, stages_cpu, last = {}, {}, [time.perf_counter(), _cpu_self(), _cpu_children()]
        helpers_cpu = {}  # step -> CPU of the helper processes that ended within it
        rss_after = {}  # step -> this process's RSS once the step ended (what the next one starts with)

        def on_step(name: str, _result: dict) -> None:
            now, cpu, children = time.perf_counter(), _cpu_self(), _cpu_children()
            stages[name], stages_cpu[name], helpers_cpu[name] = now - last[0], cpu - last[1], children - last[2]
            rss_after[name] = _rss_mb("self")
            last[:] = now, cpu, children

        # The relay beside the load reports its own peak RSS when it stops; while it runs, the two
        # processes' RSS is sampled together (their peaks need not fall at the same moment: the
        # load's comes with validation, before the helper starts).
        from hiresync.delivery.beside import RelayBeside

        helper_mb, together_mb, helpers, handed = [0.0], [0.0], [], [0]
        start, stop = RelayBeside.__enter__, RelayBeside.__exit__

        def start_and_sample(helper):
            start(helper)
            helpers.append(helper)
            helper.sampled = threading.Event()

            def sample():
                while not helper.sampled.wait(0.25):
                    try:
                        together_mb[0] = max(together_mb[0], _rss_mb("self") + _rss_mb(str(helper._process.pid)))
                    except (OSError, TypeError):  # the helper has just ended
                        pass

            threading.Thread(target=sample, daemon=True).start()
            return helper

        def stop_and_note(helper, *exc):
            helper.sampled.set()
            stop(helper, *exc)
            helper_mb[0] = max(helper_mb[0], helper.outcome.get("peak_rss_mb", 0))
            handed[0] += helper.outcome.get("handed", 0)

        RelayBeside.__enter__, RelayBeside.__exit__ = start_and_sample, stop_and_note
        with _ServerCpu(settings.hub_url) as server:
            before = _cpu_self(), _cpu_children(), _cpu_of(simulator_pid)
            started = time.perf_counter()
            summary = run_source("aiview", settings, on_step=on_step)
            seconds = time.perf_counter() - started
            after = _cpu_self(), _cpu_children(), _cpu_of(simulator_pid)
        # CPU seconds by process over the run: the helpers beside the validate and map steps and
        # beside the load are this process's children (they ended and were waited for, so they are
        # counted, by the step they ended in; so would a short helper a library runs, such as `file`,
        # counted with the pipeline when no helper started); the database server's processes (None
        # for a remote one); the vendor simulator, on the same cores.
        pipeline, children, simulator = (a - b for a, b in zip(after, before))
        # the relay beside the load starts after the map step
        validating, mapping = helpers_cpu.get("validate", 0.0), helpers_cpu.get("map", 0.0)
        cpu = {"pipeline": pipeline + (0.0 if helpers else children - validating - mapping)}
        if validating:
            cpu["validate_beside"] = validating
        if mapping:
            cpu["map_beside"] = mapping
        if helpers:
            cpu["relay_beside"] = children - validating - mapping
        if server.local or server.remote:  # not SQLite
            cpu["database_server"] = server.seconds
        cpu["simulator"] = simulator
        return {"seconds": seconds, "stages": stages, "stages_cpu": stages_cpu, "cpu": cpu, "pulled": summary["pulled"],
                "quarantined": summary["quarantined"], "results": summary["inserted"],
                "hub_bytes": _hub_bytes(settings.hub_url), "helper_rss_mb": helper_mb[0], "together_rss_mb": together_mb[0],
                "helper_handed": handed[0],
                "rss_after_step_mb": rss_after, "rows_alone": _rows_alone_of_this_run()}


def _rows_alone_of_this_run() -> dict:
    """Times inserting the rows this run left in the hub and the EHR, in a process of its own (the rows
    held in memory must not count in this run's peak)."""
    out = subprocess.run([sys.executable, __file__, "--worker", "--mode", "rows"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the rows-alone measurement failed:\n{out.stderr[-2000:]}")
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: measured[k] for k in ("seconds", "hub_seconds", "rows")}


def _rows_alone() -> dict:
    """Every row a pipeline run left in the hub and in the EHR, written again into empty databases of
    the same schema (indexes, keys, foreign keys) as the database stores them, with no client work:
    on SQLite the stored values as sqlite3 reads them, one executemany per table; on PostgreSQL each
    table's binary COPY from the run's database, loaded with one COPY. A table per transaction,
    commit included; reading the rows is not timed. What the data HireSync keeps (payloads, results,
    dimensions, identities, lineage, outbox, events; the EHR's copy) costs the database to write,
    before any of the work that produces it: a lower bound for any engine that keeps these rows,
    where the floor writes one row per result."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from connectors.targets.ehr_sql import metadata as ehr_metadata
    from hiresync.config.settings import Settings
    from hiresync.hub.models import Base
    from hiresync.hub.store import engine_for, migrate

    settings = Settings.from_env()
    seconds, rows = {"hub": 0.0, "ehr": 0.0}, 0
    for part, url, metadata in (("hub", settings.hub_url, Base.metadata), ("ehr", settings.ehr_url, ehr_metadata)):
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite:
            copy, drop = parsed.set(database=str(Path(parsed.database).with_suffix(".rows.db"))).render_as_string(False), None
        else:  # a database beside the run's, on the same server
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            name = f"{parsed.database}_rows"
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            copy = parsed.set(database=name).render_as_string(False)

            def drop(admin=admin, name=name):
                engine_for(copy).dispose()
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                admin.dispose()
        try:
            if metadata is Base.metadata:
                migrate(copy)  # the hub's schema exactly as its migrations build it
            else:
                metadata.create_all(engine_for(copy))
            source, target = engine_for(url).raw_connection(), engine_for(copy).raw_connection()
            try:
                for table in metadata.sorted_tables:  # parents before children (foreign keys)
                    columns = ", ".join(f'"{c.name}"' for c in table.columns)
                    into = f'"{table.name}" ({columns})'
                    cur = target.cursor()
                    cur.execute(f'SELECT count(*) FROM "{table.name}"')
                    if cur.fetchone()[0]:
                        continue  # seeded by the migrations
                    if sqlite:
                        data = source.cursor().execute(f"SELECT {columns} FROM \"{table.name}\"").fetchall()
                        started = time.perf_counter()
                        cur.executemany(f"INSERT INTO {into} VALUES ({', '.join('?' * len(table.columns))})", data)
                        target.commit()
                        n = len(data)
                    else:
                        with source.cursor().copy(f"COPY (SELECT {columns} FROM \"{table.name}\") TO STDOUT (FORMAT binary)") as out:
                            data = b"".join(bytes(chunk) for chunk in out)
                        started = time.perf_counter()
                        with cur.copy(f"COPY {into} FROM STDIN (FORMAT binary)") as into_copy:
                            into_copy.write(data)
                        target.commit()
                        cur.execute(f'SELECT count(*) FROM "{table.name}"')
                        n = cur.fetchone()[0]
                    seconds[part] += time.perf_counter() - started
                    rows += n
                    del data
            finally:
                source.close()
                target.close()
        finally:
            if drop:
                drop()
    return {"seconds": seconds["hub"] + seconds["ehr"], "hub_seconds": seconds["hub"], "rows": rows}


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far; None once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


class _ServerCpu:
    """CPU seconds a database server on this machine spends during a run: every process of it
    (backends, WAL writer, checkpointer, autovacuum), those that start during the run too (the relay
    beside the load's connections). Looked at every second, since a process that ends takes its
    count along (what it used after the last look is lost); the look costs the pipeline's process a
    few milliseconds. While the benchmark runs, the server works for this run alone. SQLite has no
    server (its work is done in the pipeline's and the relay's processes); a remote server's
    processes cannot be seen (`seconds` None)."""

    def __init__(self, url: str):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        server = parsed.get_backend_name() != "sqlite"
        self.local = server and parsed.host in (None, "", "localhost", "127.0.0.1", "::1")
        self.remote = server and not self.local
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def _look(self) -> dict[int, float]:
        seen = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if stat.read_text().split(" ", 2)[1] != "(postgres)":
                    continue
            except OSError:  # ended meanwhile
                continue
            if (cpu := _cpu_of(int(stat.parent.name))) is not None:
                seen[int(stat.parent.name)] = cpu
        return seen

    def __enter__(self) -> "_ServerCpu":
        if self.local:
            self.first = self.last = self._look()
            self._watcher.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            self.last = self.last | self._look()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.local:
            self._watcher.join()  # its last look must not land after this one
            self.last = self.last | self._look()

    @property
    def seconds(self) -> float | None:
        if self.remote:
            return None
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def _rss_mb(pid: str) -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())[1]) / 1024


@contextmanager
def _simulator(count: int):
    """The AIView simulator as a separate process on a free loopback port."""
    import inspect
    import socket

    from simulators.aiview import AIViewSimulator

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "simulators.aiview", "--port", str(port), "--count", str(count),
                             "--seed", "3", "--page-limit-max", "1000"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once the data set is built and the port listens
        if not line:
            raise SystemExit("the AIView simulator did not start")
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        secret = inspect.signature(AIViewSimulator).parameters["client_secret"].default
        yield line.split()[2], fields["client_id"], secret, int(fields["versions"]), proc.pid
    finally:
        proc.terminate()
        proc.wait()


def _pull_only(versions: int) -> float:
    from connectors.rest.profile import RestProfile
    from connectors.rest.source import RestSource
    from hiresync.config.connections import get_connection
    from hiresync.config.settings import Settings

    profile = RestProfile.load(Settings.from_env().home / "connectors/profiles/aiview.yaml")
    source = RestSource(profile, get_connection(profile.connection))
    started = time.perf_counter()
    n = sum(len(page) for page in source.pages(profile.start))
    assert n == versions
    return time.perf_counter() - started


def _floor() -> float:
    """Fetch every page, parse it, and insert all rows with one executemany into the hub database."""
    import orjson
    from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert

    from connectors.rest.profile import RestProfile
    from connectors.rest.source import RestSource
    from hiresync.config.connections import get_connection
    from hiresync.config.settings import Settings
    from hiresync.hub.store import engine_for

    settings = Settings.from_env()
    profile = RestProfile.load(settings.home / "connectors/profiles/aiview.yaml")
    table = Table("floor_results", MetaData(), Column("id", Integer, primary_key=True),
                  Column("vendor_result_id", String(128)), Column("payload", Text))
    engine = engine_for(settings.hub_url)
    table.metadata.create_all(engine)
    started = time.perf_counter()
    source = RestSource(profile, get_connection(profile.connection))
    rows = [{"vendor_result_id": str(p.get("result_id") or p.get("id")), "payload": orjson.dumps(p).decode()}
            for page in source.pages(profile.start) for p in page]
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    return time.perf_counter() - started


def _hub_bytes(url: str) -> int:
    """The hub's size on disk: the SQLite file once its write-ahead log is checkpointed (the WAL is
    transient), or the PostgreSQL database."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from hiresync.hub.store import engine_for

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        base = Path(parsed.database)
        with engine_for(url).connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in (base, Path(f"{base}-wal")) if p.exists())
    with engine_for(url).connect() as conn:
        return int(conn.scalar(text("SELECT pg_database_size(current_database())")))


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


def _print_cpu(runs: list[dict], seconds: float) -> None:
    """CPU per pulled result by process, and what it allows: if the run kept every core busy, it could
    go no faster than cores / CPU per result. Far below that, the run waits (on one busy core, on the
    database); close to it, only less work per result makes it faster."""
    pulled = runs[0]["pulled"]
    parts = {name: statistics.median(r["cpu"][name] for r in runs) for name in runs[0]["cpu"]
             if all(r["cpu"][name] is not None for r in runs)}
    total = sum(parts.values())
    cores = os.cpu_count() or 1
    shown = ", ".join(f"{name.replace('_', ' ')} {v / pulled * 1000:.2f}" for name, v in parts.items())
    unseen = " (the database server is not on this machine: not counted)" if len(parts) < len(runs[0]["cpu"]) else ""
    print(f"  CPU per result (ms)  {shown} = {total / pulled * 1000:.2f}{unseen}")
    print(f"  the {cores} cores were {total / (seconds * cores):.0%} busy; with all of them busy this work allows "
          f"at most {pulled * cores / total:,.0f} results/s")


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
    pull = [_one("pull", "baseline", args.count, None) for _ in range(args.repeat)]
    pull_s = statistics.median(r["seconds"] for r in pull)
    print(f"\npull + parse only: {pull[0]['pulled'] / pull_s:,.0f} results/s  ({pull_s:.1f} s)")
    for db in args.db or ["sqlite", "postgresql"]:
        floors, runs = [], []
        for mode, out in (("floor", floors), ("pipeline", runs)):
            for _ in range(args.repeat):  # every run starts on an empty database
                url, drop = (None, None) if db == "sqlite" else _server_db(args.pg_url)
                if db != "sqlite" and url is None:
                    break
                try:
                    out.append(_one(db, mode, args.count, url))
                finally:
                    if drop:
                        drop()
        if not runs:
            continue
        floor_s = statistics.median(r["seconds"] for r in floors)
        floor_rate = floors[0]["pulled"] / floor_s
        seconds = statistics.median(r["seconds"] for r in runs)
        rate = runs[0]["pulled"] / seconds
        print(f"\n{db}:")
        print(f"  floor (pull + parse + one bulk insert)  {floor_rate:>9,.0f} results/s  ({floor_s:.1f} s)")
        print(f"  HireSync end to end                     {rate:>9,.0f} results/s  ({seconds:.1f} s for "
              f"{runs[0]['pulled']:,} pulled, {runs[0]['quarantined']:,} quarantined)  = {rate / floor_rate:.2f} x floor")
        rows_s = statistics.median(r["rows_alone"]["seconds"] for r in runs)
        hub_s = statistics.median(r["rows_alone"]["hub_seconds"] for r in runs)
        bound = runs[0]["pulled"] / (pull_s + rows_s)
        print(f"  the rows alone                          {bound:>9,.0f} results/s  ({pull_s:.1f} s pull + parse, "
              f"{rows_s:.1f} s writing the {runs[0]['rows_alone']['rows']:,} rows the run left: hub {hub_s:.1f} s, "
              f"EHR {rows_s - hub_s:.1f} s)  = {bound / floor_rate:.2f} x floor")
        print(f"    {'stage':<9} {'wall':>9}  {'results/s':>10}  {'share':>5}  {'CPU of the pipeline':>20}")
        for stage in runs[0]["stages"]:
            s = statistics.median(r["stages"][stage] for r in runs)
            c = statistics.median(r["stages_cpu"][stage] for r in runs)
            print(f"    {stage:<9} {s:7.2f} s  {runs[0]['pulled'] / s:>10,.0f}  {s / seconds:5.1%}  {c:9.2f} s = {c / s:4.0%} of a core")
        _print_cpu(runs, seconds)
        peak = statistics.median(r["peak_rss_mb"] for r in runs)
        helper = statistics.median(r.get("helper_rss_mb", 0) for r in runs)
        together = statistics.median(r.get("together_rss_mb", 0) for r in runs)
        print(f"  peak memory (RSS, median)  {max(peak, together):,.0f} MB for the run" + (
            f" (the load's process {peak:,.0f} MB at its peak; with the relay beside the load, whose own peak "
            f"was {helper:,.0f} MB, the two held at most {together:,.0f} MB at once)" if helper else ""))
        if helper:
            print(f"  the relay beside the load sent {statistics.median(r.get('helper_handed', 0) for r in runs):,.0f} "
                  f"rows with the body the load handed over (median), rendering the rest itself")
        per_result = statistics.median(r["hub_bytes"] / max(r["results"], 1) for r in runs)
        print(f"  hub on disk  {statistics.median(r['hub_bytes'] for r in runs) / 2**20:,.0f} MB = "
              f"{per_result / 1024:.1f} KB per stored result")


if __name__ == "__main__":
    main()
