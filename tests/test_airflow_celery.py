"""`make airflow-celery`: the distributed deployment (PostgreSQL metadata and hub, Redis broker,
api-server, scheduler, dag-processor, triggerer, two Celery workers) runs both vendor syncs
triggered through the REST API, on both workers, with the hub's accounting exact; a worker
SIGKILLed mid-run costs a retry, not a wrong result or a duplicate row. And a missing broker stops
the start with one message, leaving nothing running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid

import psutil
import pytest
import requests

from tests.conftest import SERVER_URLS
from tests.test_first_start import free_port, start, stop

pytestmark = [
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed here"),
    pytest.mark.skipif(not SERVER_URLS["postgresql"], reason="PostgreSQL is not configured (HIRESYNC_TEST_PG_URL)"),
]
SYNCS = ("hiresync_sync_aiview", "hiresync_sync_zhiping")


@pytest.fixture
def redis_url(tmp_path):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def pg_databases():
    """Two fresh PostgreSQL database URLs (metadata, hub); the launcher creates them, we drop them."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(SERVER_URLS["postgresql"])
    names = [f"hiresync_af_{uuid.uuid4().hex[:8]}", f"hiresync_hub_{uuid.uuid4().hex[:8]}"]
    yield [base.set(database=n).render_as_string(hide_password=False) for n in names]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for n in names:
            c.execute(text(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
    admin.dispose()


class Api:
    def __init__(self, env):
        self.url = f"http://127.0.0.1:{env['HIRESYNC_AIRFLOW_PORT']}"
        self.home = env["AIRFLOW_HOME"]
        self.session = requests.Session()

    def login(self, deadline: float) -> None:
        while True:
            try:
                password = json.load(open(f"{self.home}/simple_auth_manager_passwords.json.generated"))["admin"]
                r = requests.post(f"{self.url}/auth/token", json={"username": "admin", "password": password}, timeout=10)
                if r.status_code in (200, 201):
                    self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
                    return
            except (OSError, ValueError, requests.RequestException):
                pass
            assert time.monotonic() < deadline, "the api-server never answered"
            time.sleep(2)

    def get(self, path: str) -> dict:
        r = self.session.get(f"{self.url}/api/v2{path}", timeout=20)
        r.raise_for_status()
        return r.json()

    def trigger(self, dag_id: str, deadline: float) -> str:
        while True:  # the DAG exists once the dag-processor has parsed it
            r = self.session.post(f"{self.url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=20)
            if r.status_code in (200, 201):
                return r.json()["dag_run_id"]
            assert time.monotonic() < deadline, (r.status_code, r.text[:300])
            time.sleep(3)

    def wait(self, dag_id: str, run_id: str, deadline: float, on_poll=None) -> str:
        while True:
            state = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            if on_poll:
                on_poll()
            assert time.monotonic() < deadline, f"{dag_id} {run_id} still {state}"
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]


def _hub_checks(hub_url: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(hub_url)
    with engine.connect() as c:
        runs = c.execute(text("SELECT id, status, pulled, inserted, updated, unchanged, quarantined FROM runs")).all()
        dupes = {
            "results": c.execute(text("SELECT count(*) - count(DISTINCT (vendor, vendor_result_id)) FROM interview_results")).scalar(),
            "quarantine": c.execute(text("SELECT count(*) - count(DISTINCT (source, vendor_result_id, raw_payload_id)) "
                                         "FROM quarantine")).scalar(),
            # one row per version: batches of 100 load a re-scored result's versions in different
            # batches, and each is delivered in turn (within one batch the newest supersedes the rest)
            "outbox": c.execute(text("SELECT count(*) - count(DISTINCT (target, result_id, kind, result_version)) "
                                     "FROM outbox WHERE result_id IS NOT NULL")).scalar(),
        }
    engine.dispose()
    return {"runs": runs, "dupes": dupes}


def test_two_celery_workers_run_both_syncs_and_survive_a_killed_worker(tmp_path, redis_url, pg_databases):
    meta, hub = pg_databases
    sources = tmp_path / "sources.yaml"  # the two vendors, unscheduled: only the runs triggered here
    sources.write_text("sources:\n" + "".join(
        f"  {n}:\n    profile: connectors/profiles/{n}.yaml\n    mapping: mappings/{n}.yaml\n"
        "    schedule: null\n    targets: [ehr]\n" for n in ("aiview", "zhiping")))
    proc, env = start("celery", tmp_path, AIRFLOW__CELERY__BROKER_URL=redis_url, HIRESYNC_AIRFLOW_DB_URL=meta,
                      HIRESYNC_SOURCES=str(sources),
                      HIRESYNC_HUB_URL=hub, HIRESYNC_SIM_COUNT="400", HIRESYNC_RETRY_DELAY="2",
                      # batches of 100 and the relay beside the load from 100 rows: it runs in the workers too
                      HIRESYNC_BATCH_SIZE="100", HIRESYNC_RELAY_BESIDE_ROWS="100",
                      HIRESYNC_WORKER_LOG_PORTS=f"{free_port()},{free_port()}",
                      AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
                      AIRFLOW__CELERY__WORKER_CONCURRENCY="1")
    api = Api(env)
    deadline = time.monotonic() + 540
    helpers = HelperWatch()
    try:
        api.login(deadline)
        helpers.start()
        runs = {dag: api.trigger(dag, deadline) for dag in SYNCS}
        for dag, run_id in runs.items():
            assert api.wait(dag, run_id, deadline) == "success", (tmp_path / "launcher.log").read_text()[-3000:]
        helpers.stop()
        assert helpers.seen and all(helpers.seen.values()), helpers.seen  # started by a worker's load task
        hosts = {ti["hostname"] for dag, run_id in runs.items() for ti in api.task_instances(dag, run_id)}
        assert hosts == {"worker1", "worker2"}, hosts  # concurrency 1 each: both had work

        hub_state = _hub_checks(hub)
        assert len(hub_state["runs"]) == 2 and all(r.status == "success" for r in hub_state["runs"])
        assert all(r.pulled == r.inserted + r.updated + r.unchanged + r.quarantined > 0 for r in hub_state["runs"])
        assert hub_state["dupes"] == {"results": 0, "quarantine": 0, "outbox": 0}

        # A worker dies mid-run (SIGKILL, the whole worker: main process and the task it runs).
        run_id = api.trigger("hiresync_sync_aiview", deadline)
        kills = []  # (task_id, try_number) of each kill

        def try_state(task_id: str, try_number: int) -> str | None:
            tries = api.get(f"/dags/hiresync_sync_aiview/dagRuns/{run_id}/taskInstances/{task_id}/tries")
            return next((t["state"] for t in tries["task_instances"] if t["try_number"] == try_number), None)

        def kill_a_busy_worker():
            # The API may show a task running a moment after it finished: such a kill hit an idle worker, and
            # that try ends "success". Only a kill whose try did not succeed proves a retry; until one is
            # seen, kill the next running task.
            if kills and try_state(*kills[-1]) != "success":
                return
            busy = [ti for ti in api.task_instances("hiresync_sync_aiview", run_id) if ti["state"] == "running"]
            if busy:
                kills.append((busy[0]["task_id"], busy[0]["try_number"]))
                _sigkill_worker(busy[0]["hostname"])

        assert api.wait("hiresync_sync_aiview", run_id, deadline, kill_a_busy_worker) == "success"
        hit = [(task_id, n) for task_id, n in kills if try_state(task_id, n) != "success"]
        assert hit, f"every kill came after its task had finished: {kills}"
        tries = {ti["task_id"]: ti["try_number"] for ti in api.task_instances("hiresync_sync_aiview", run_id)}
        assert tries[hit[0][0]] > hit[0][1]  # the killed task was retried, and the run still ended right
        hub_state = _hub_checks(hub)
        assert all(r.status == "success" for r in hub_state["runs"]) and len(hub_state["runs"]) == 3
        assert all(r.pulled == r.inserted + r.updated + r.unchanged + r.quarantined for r in hub_state["runs"])
        assert hub_state["dupes"] == {"results": 0, "quarantine": 0, "outbox": 0}
    finally:
        helpers.stop()
        stop(proc, tmp_path)


class HelperWatch(threading.Thread):
    """Notes every relay beside a load (hiresync.delivery.beside) that runs while it watches, and
    whether a Celery worker's task started it. Such a helper lives at least until the load that
    started it has its outcome, far longer than the tenth of a second between looks."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen: dict[int, bool] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            for p in psutil.process_iter(["cmdline"]):
                if p.pid not in self.seen and "hiresync.delivery.beside" in " ".join(p.info["cmdline"] or []):
                    try:
                        self.seen[p.pid] = any("celery worker" in " ".join(a.cmdline()) for a in p.parents())
                    except psutil.Error:
                        pass

    def stop(self) -> None:
        self._done.set()


def _sigkill_worker(hostname: str) -> None:
    """SIGKILL the Celery worker started as `--celery-hostname <hostname>@...` and all its children."""
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        # the worker itself, not the Procfile's shell line that starts it again (a service manager's part)
        if "celery worker" in cmd and f"--celery-hostname {hostname}@" in cmd and "for try in" not in cmd:
            for child in p.children(recursive=True) + [p]:
                try:
                    child.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass


def test_a_missing_broker_stops_the_start_with_one_message_and_nothing_running(tmp_path, pg_databases):
    meta, hub = pg_databases
    proc, _ = start("celery", tmp_path, AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
                    HIRESYNC_AIRFLOW_DB_URL=meta, HIRESYNC_HUB_URL=hub)
    assert proc.wait(60) == 1
    out = (tmp_path / "launcher.log").read_text()
    assert "Celery broker" in out and "redis-server" in out and "started (pid=" not in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_an_unreachable_metadata_db_or_missing_shared_folder_stops_it_too(tmp_path, redis_url):
    proc, _ = start("celery", tmp_path, AIRFLOW__CELERY__BROKER_URL=redis_url,
                    HIRESYNC_AIRFLOW_DB_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    assert proc.wait(60) == 1
    out = (tmp_path / "launcher.log").read_text()
    assert "metadata database" in out and "start PostgreSQL" in out and len(out.strip().splitlines()) == 1

    other = tmp_path / "second"
    other.mkdir()
    proc, _ = start("celery", other, AIRFLOW__CELERY__BROKER_URL=redis_url, HIRESYNC_VAR=str(other / "nowhere"))
    assert proc.wait(60) == 1
    out = (other / "launcher.log").read_text()
    assert "shared folder HIRESYNC_VAR" in out and "nowhere" in out and len(out.strip().splitlines()) == 1
