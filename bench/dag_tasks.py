"""How long each task of the sync DAG takes under Airflow's `dag.test()`, for a 10-result run.

Each measured run is a fresh process (nothing imported yet, as in a new worker) on a fresh hub,
with an AIView simulator of 10 results. `dag.test()` runs every task in that one process, so:
  cold     the DAG as it comes: its first task also pays for starting Airflow's in-process
           execution API, which dag.test() starts on the first call a task makes;
  warm     the same, after a one-task no-op DAG has run in that process: what is left is the
           DAG's own work (imports included: the validate task imports Great Expectations).
The no-op DAG's task is printed too: Airflow's share of the cold first task.
Printed: each task's duration as Airflow records it (TaskInstance.duration), median of --repeat.

    .venv/bin/python bench/dag_tasks.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET = 3.0  # seconds per task, the engine issue's bar


NOOP_DAG = """
from airflow.sdk import dag, task


@dag(dag_id="bench_noop", schedule=None)
def bench_noop():
    @task
    def noop() -> None:
        return None

    noop()


bench_noop()
"""


def worker(warm: bool) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    from hiresync.hub.store import migrate
    from hiresync.privacy.pii import Keyring
    from hiresync.config.settings import Settings
    from simulators.aiview import AIViewSimulator

    settings = Settings.from_env()
    Keyring.generate(settings.key_file)
    migrate(settings.hub_url)
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    out: dict[str, float] = {}
    if warm:
        run = bag.dags["bench_noop"].test()
        out["(no-op DAG's task)"] = run.get_task_instances()[0].duration
    with AIViewSimulator(count=10, seed=11, defect_rate=0.0, rescore_rate=0.0) as sim:
        os.environ["AIRFLOW_CONN_HIRESYNC_AIVIEW"] = json.dumps(
            {"conn_type": "http", "host": sim.url, "login": sim.client_id, "password": sim.client_secret})
        dag = bag.dags["hiresync_sync_aiview"]
        run = dag.test()
    if str(run.state) != "success":
        raise SystemExit(f"the DAG run ended {run.state}")
    order = [t.task_id for t in dag.topological_sort()]
    durations = {ti.task_id: ti.duration for ti in run.get_task_instances()}
    out.update({task_id: durations[task_id] for task_id in order})
    return out


def _environment(airflow_home: Path, var: Path) -> dict:
    """The repository's DAG files beside the no-op DAG, in a DAG folder of their own: dag.test()
    runs only DAGs it finds in the configured folder."""
    dags = airflow_home / "dags"
    dags.mkdir()
    for dag_file in (REPO / "dags").glob("*.py"):
        (dags / dag_file.name).symlink_to(dag_file)
    (dags / "bench_noop.py").write_text(NOOP_DAG)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # make's exports, say
    return dict(inherited, AIRFLOW_HOME=str(airflow_home), AIRFLOW_CONFIG=str(REPO / "airflow.cfg"),
                AIRFLOW__CORE__DAGS_FOLDER=str(dags), AIRFLOW__CORE__LOAD_EXAMPLES="False",
                AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home / 'airflow.db'}",
                HIRESYNC_HOME=str(REPO), HIRESYNC_VAR=str(var), GX_ANALYTICS_ENABLED="False",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--worker", choices=["cold", "warm"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:  # the result goes to a file: Airflow and its plugins may print to stdout
        Path(args.out).write_text(json.dumps(worker(args.worker == "warm")))
        return

    with tempfile.TemporaryDirectory(prefix="hiresync-bench-airflow-") as tmp:
        home = Path(tmp) / "airflow"
        home.mkdir()
        env = _environment(home, Path(tmp) / "var0")
        env.pop("HIRESYNC_HUB_URL", None)
        env.pop("HIRESYNC_KEYS", None)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        runs: dict[str, list[dict]] = {"cold": [], "warm": []}
        for i in range(args.repeat):
            for mode in runs:
                run_env = dict(env, HIRESYNC_VAR=str(Path(tmp) / f"var-{mode}-{i}"))
                result = Path(tmp) / f"{mode}-{i}.json"
                out = subprocess.run([sys.executable, __file__, "--worker", mode, "--out", str(result)],
                                     env=run_env, capture_output=True, text=True, cwd=REPO)
                if out.returncode != 0:
                    raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
                runs[mode].append(json.loads(result.read_text()))

    print(f"HireSync sync DAG under dag.test(), 10 results, seconds per task, median of {args.repeat}"
          f" (fresh process each run)\n")
    tasks = list(runs["warm"][0])
    print(f"{'task':<22}{'cold':>8}{'warm':>8}")
    for task_id in tasks:
        cold = [r[task_id] for r in runs["cold"] if task_id in r]
        warm = [r[task_id] for r in runs["warm"]]
        print(f"{task_id:<22}{_fmt(cold):>8}{_fmt(warm):>8}")
    worst = max((statistics.median(r[t] for r in runs["warm"]), t) for t in tasks if not t.startswith("("))
    print(f"\nslowest HireSync task once Airflow is up: {worst[1]} {worst[0]:.2f} s "
          f"({'within' if worst[0] <= BUDGET else 'over'} the {BUDGET:.0f} s budget)")


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


if __name__ == "__main__":
    main()
