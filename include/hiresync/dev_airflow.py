"""`make airflow`: `airflow standalone` with the vendor simulators behind their connections,
so a data engineer can trigger and watch the sync DAG in the Airflow UI."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from hiresync.config.files import tighten


def main() -> int:
    from simulators.aiview import AIViewSimulator
    from simulators.zhiping import ZhiPingSimulator

    home = Path(os.environ["AIRFLOW_HOME"])
    count = int(os.environ.get("HIRESYNC_SIM_COUNT", 2000))
    with AIViewSimulator(count=count, seed=7) as aiview, ZhiPingSimulator(count=count, seed=8) as zhiping:
        # standalone starts its components as `airflow ...` found on PATH: the virtualenv's first.
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        env.update(_shared_secrets(home))
        for conn_id, sim in (("hiresync_aiview", aiview), ("hiresync_zhiping", zhiping)):
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
                {"conn_type": "http", "host": sim.url, "login": sim.client_id, "password": sim.client_secret})
        print(f"AIView simulator on {aiview.url}, ZhiPing simulator on {zhiping.url}")
        print("Airflow UI: http://localhost:8080  user 'admin', password in "
              f"{home / 'simple_auth_manager_passwords.json.generated'} (written on first start)")
        print("Trigger 'hiresync_sync_aiview' there; Ctrl-C stops Airflow and the simulators.\n", flush=True)
        tighten(home / "simple_auth_manager_passwords.json.generated", 0o600)  # one an older start left 0644
        proc = airflow_process([sys.executable, "-m", "airflow", "standalone"], env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


def airflow_process(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """Airflow with umask 077: the admin password file it generates, its logs and its database are
    readable by their owner only."""
    return subprocess.Popen(cmd, env=env, cwd=cwd, umask=0o077)


def _shared_secrets(home: Path) -> dict[str, str]:
    """The scheduler's workers and the API server must sign and check task tokens with one secret;
    with none configured each component makes up its own and every task is refused. Generated once,
    kept beside Airflow's database, readable by the owner only."""
    path = home / "secrets.json"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                       "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32)}, f)
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in os.environ}


if __name__ == "__main__":
    sys.exit(main())
