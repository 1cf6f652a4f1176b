"""`make airflow` and `make airflow-celery`: the whole Airflow deployment on this machine, with the
vendor simulators behind their connections, in one command; Ctrl-C stops everything it started.

- `local` (make airflow): api-server, scheduler (LocalExecutor), dag-processor, triggerer; the
  metadata DB and the hub wherever the environment says (SQLite under var/ by default).
- `celery` (make airflow-celery): api-server, scheduler (CeleryExecutor), dag-processor,
  triggerer and two Celery workers with their own hostnames and log-server ports; metadata DB and
  hub on PostgreSQL, Redis as the broker, one shared HIRESYNC_VAR (staging and the key file).

The components run under honcho (a Procfile-style process manager: one output stream with a
prefix per component, SIGTERM to every process group on Ctrl-C or when any component dies, SIGKILL
5 s later) rather than hand-written supervision. The api-server starts first; every component that
dispatches or runs tasks waits until it answers (`python -m hiresync.dev_airflow wait-api`), so no
task is dispatched to an execution API that is not listening yet. Before anything starts, the
broker, the metadata DB and the shared folder are checked: a missing one stops the start with one
message naming it and how to start it, and nothing is left running.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hiresync.config.files import tighten
from hiresync.config.settings import safe_url

API_PORT = 8080
WORKER_LOG_PORTS = (8793, 8794)


class NotReady(Exception):
    """Something the deployment needs is missing; the message names it and how to start it."""


@dataclass
class Deployment:
    mode: str
    env: dict[str, str]
    processes: dict[str, str] = field(default_factory=dict)  # name -> shell command (a Procfile's lines)
    api_url: str = ""

    def procfile(self) -> str:
        return "".join(f"{name}: {cmd}\n" for name, cmd in self.processes.items())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["wait-api"]:
        return wait_api(argv[1], float(argv[2]) if len(argv) > 2 else 180)
    mode = argv[0] if argv else "local"
    if mode not in ("local", "celery"):
        print(f"usage: python -m hiresync.dev_airflow [local|celery]  (not {mode!r})", file=sys.stderr)
        return 2
    os.umask(0o077)  # the admin password file, logs, staging and databases: readable by their owner only
    try:
        env = base_env(mode)
        preflight(mode, env)
    except NotReady as exc:
        print(f"make airflow{'-celery' if mode == 'celery' else ''}: {exc}", file=sys.stderr)
        return 1
    return run(mode, env)


def base_env(mode: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Every component's environment: the caller's, the shared secrets, and for celery the executor,
    broker, result backend, async metadata URL and execution API URL (each only if not set already)."""
    env = dict(os.environ if environ is None else environ)
    # Components start as `airflow ...` found on PATH: the virtualenv's first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    home = Path(env["AIRFLOW_HOME"])
    port = int(env.get("HIRESYNC_AIRFLOW_PORT", API_PORT))
    defaults = {"AIRFLOW__API__PORT": str(port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                # A lost task's heartbeat, and a lost worker's task, are noticed after this many seconds.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "300"}
    if mode == "celery":
        meta = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
        if not meta.startswith("postgresql"):
            meta = env.get("HIRESYNC_AIRFLOW_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/hiresync_airflow")
        defaults.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            # Airflow derives an asyncpg URL from a PostgreSQL one; psycopg 3 is async already.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta.replace("postgresql+psycopg://", "postgresql+psycopg_async://", 1),
            "HIRESYNC_HUB_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/hiresync_hub",
        })
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = meta
    for k, v in defaults.items():
        env.setdefault(k, v)
    env.update({k: v for k, v in _shared_secrets(home).items() if k not in env})
    return env


def preflight(mode: str, env: dict[str, str]) -> None:
    """Raise NotReady naming the first missing piece; start nothing."""
    if mode != "celery":
        return
    var = env.get("HIRESYNC_VAR")
    if not var or not Path(var).is_dir() or not os.access(var, os.W_OK):
        raise NotReady(f"shared folder HIRESYNC_VAR={var or '(unset)'} is missing or not writable: every worker "
                       "must see the same folder (staging, key file). Create it on shared storage, e.g. "
                       "`mkdir -p var && HIRESYNC_VAR=$PWD/var .venv/bin/hiresync init`")
    broker = env["AIRFLOW__CELERY__BROKER_URL"]
    try:
        import redis

        redis.Redis.from_url(broker, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the person starting it
        raise NotReady(f"the Celery broker at {safe_url(broker)} does not answer ({type(exc).__name__}): start "
                       "Redis (`redis-server --daemonize yes`) or set AIRFLOW__CELERY__BROKER_URL") from None
    for what, url in (("Airflow's metadata database", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]),
                      ("the hub database", env["HIRESYNC_HUB_URL"])):
        _ensure_database(what, url)


def _ensure_database(what: str, url: str) -> None:
    """The server must answer; a database missing on it is created (a fresh machine)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError

    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).scalar():
                conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    except (OperationalError, ProgrammingError) as exc:
        raise NotReady(f"{what} at {safe_url(url)} is unreachable ({type(exc.orig).__name__}): start PostgreSQL "
                       "(`pg_ctlcluster <version> main start`) or point the URL at a running server") from None
    finally:
        admin.dispose()


def plan(mode: str, env: dict[str, str]) -> Deployment:
    """The components and their commands, api-server first; the others wait for it."""
    port = env["AIRFLOW__API__PORT"]
    api_url = f"http://127.0.0.1:{port}"
    wait = f"{shlex.quote(sys.executable)} -m hiresync.dev_airflow wait-api {api_url} && exec"
    d = Deployment(mode, env, api_url=api_url)
    d.processes["api-server"] = f"exec airflow api-server --port {port}"
    d.processes["scheduler"] = f"{wait} airflow scheduler"
    d.processes["dag-processor"] = "exec airflow dag-processor"
    d.processes["triggerer"] = f"{wait} airflow triggerer"
    if mode == "celery":
        ports = [int(p) for p in env.get("HIRESYNC_WORKER_LOG_PORTS", "").split(",") if p] or WORKER_LOG_PORTS
        for n, log_port in enumerate(ports, start=1):
            # Own hostname (Celery's, and the one task instances record), own log-server port on one
            # host. A worker that dies is started again, up to 5 times, as a service manager would
            # (its lost task is retried meanwhile, on the other worker or on it); Ctrl-C stops both.
            worker = (f"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT={log_port} HIRESYNC_WORKER_HOSTNAME=worker{n} "
                      "AIRFLOW__CORE__HOSTNAME_CALLABLE=hiresync.dev_airflow.worker_hostname "
                      f"airflow celery worker --celery-hostname worker{n}@%h")
            d.processes[f"worker{n}"] = (f"{wait.removesuffix(' && exec')} && "
                                         f"for try in 1 2 3 4 5 6; do {worker}; sleep 2; done")
    return d


def run(mode: str, env: dict[str, str]) -> int:
    from honcho.manager import Manager
    from simulators.aiview import AIViewSimulator
    from simulators.zhiping import ZhiPingSimulator

    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    _prepare(env)
    count = int(env.get("HIRESYNC_SIM_COUNT", 2000))
    with AIViewSimulator(count=count, seed=7) as aiview, ZhiPingSimulator(count=count, seed=8) as zhiping:
        for conn_id, sim in (("hiresync_aiview", aiview), ("hiresync_zhiping", zhiping)):
            env.setdefault(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
                {"conn_type": "http", "host": sim.url, "login": sim.client_id, "password": sim.client_secret}))
        d = plan(mode, env)
        (home / "Procfile").write_text(d.procfile())  # what runs, for a person to read (honcho start works on it)
        print(f"AIView simulator on {aiview.url}, ZhiPing simulator on {zhiping.url}")
        print(f"Airflow UI: {d.api_url}  user 'admin', password in "
              f"{home / 'simple_auth_manager_passwords.json.generated'} (written on first start)")
        print(f"Components ({mode}): {', '.join(d.processes)}; Ctrl-C stops them all.\n", flush=True)
        tighten(home / "simple_auth_manager_passwords.json.generated", 0o600)  # one an older start left 0644
        manager = Manager()
        for name, cmd in d.processes.items():
            manager.add_process(name, cmd, env=env)
        try:
            manager.loop()  # returns when all have stopped: Ctrl-C, SIGTERM, or any one of them dying
        finally:
            _reap([p.get("pid") for p in manager._processes.values()])
        return manager.returncode or 0


def _reap(groups: list[int | None], grace: float = 10) -> None:
    """honcho stops each component's process group leader; a child it left (a task runner, a
    gunicorn worker) gets SIGTERM, then SIGKILL after `grace` seconds: nothing outlives Ctrl-C."""
    import signal

    def alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    left = [g for g in groups if g and alive(g)]
    for g in left:
        os.killpg(g, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [g for g in left if alive(g)]
    for g in left:
        os.killpg(g, signal.SIGKILL)


def _prepare(env: dict[str, str]) -> None:
    """Airflow's metadata schema and HireSync's hub and key, before any component starts."""
    for cmd in ([sys.executable, "-m", "airflow", "db", "migrate"], [sys.executable, "-m", "hiresync.cli", "init"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
            raise SystemExit(f"{' '.join(cmd[2:])} failed (output above); nothing was started")


def wait_api(url: str, timeout: float = 180) -> int:
    """Block until the api-server answers its health endpoint (exit 0), or give up (exit 1)."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=(2, 5)).status_code == 200:
                return 0
        except requests.RequestException:
            pass
        time.sleep(1)
    print(f"the api-server at {url} did not answer within {timeout:.0f} s", file=sys.stderr)
    return 1


def worker_hostname() -> str:
    """[core] hostname_callable of the workers: their own name when several share one host."""
    import socket

    return os.environ.get("HIRESYNC_WORKER_HOSTNAME") or socket.getfqdn()


def airflow_process(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """Airflow with umask 077: the admin password file it generates, its logs and its database are
    readable by their owner only."""
    return subprocess.Popen(cmd, env=env, cwd=cwd, umask=0o077)


def _shared_secrets(home: Path) -> dict[str, str]:
    """Every component must sign and check task tokens with one JWT secret and share one API secret
    key; with none configured each makes up its own and every task is refused. Generated once, kept
    beside Airflow's database, readable by the owner only."""
    path = home / "secrets.json"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                       "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32)}, f)
    return json.loads(path.read_text())


if __name__ == "__main__":
    sys.exit(main())
