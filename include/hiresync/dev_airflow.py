"""`make airflow`: `airflow standalone` with the vendor simulators behind their connections,
so a data engineer can trigger and watch the sync DAG in the Airflow UI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def main() -> int:
    from simulators.aiview import AIViewSimulator
    from simulators.zhiping import ZhiPingSimulator

    home = Path(os.environ["AIRFLOW_HOME"])
    count = int(os.environ.get("HIRESYNC_SIM_COUNT", 2000))
    with AIViewSimulator(count=count, seed=7) as aiview, ZhiPingSimulator(count=count, seed=8) as zhiping:
        env = dict(os.environ)
        for conn_id, sim in (("hiresync_aiview", aiview), ("hiresync_zhiping", zhiping)):
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
                {"conn_type": "http", "host": sim.url, "login": sim.client_id, "password": sim.client_secret})
        print(f"AIView simulator on {aiview.url}, ZhiPing simulator on {zhiping.url}")
        print("Airflow UI: http://localhost:8080  user 'admin', password in "
              f"{home / 'simple_auth_manager_passwords.json.generated'} (written on first start)")
        print("Trigger 'hiresync_sync_aiview' there; Ctrl-C stops Airflow and the simulators.\n", flush=True)
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
