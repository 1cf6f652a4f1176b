"""`make demo`: the AIView simulator on loopback, the sync DAG run twice through Airflow, and what
happened, told plainly. Run with `python -m hiresync.demo` after `airflow db migrate`."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

SOURCE = "aiview"
DAG_ID = f"hiresync_sync_{SOURCE}"


def main(count: int = 2000, rescore: int = 50) -> int:
    from simulators.aiview import AIViewSimulator

    from hiresync.config.settings import Settings

    settings = Settings.from_env()
    log_file = settings.var_dir / "demo-airflow.log"
    with AIViewSimulator(count=count, seed=7) as sim:
        os.environ[f"AIRFLOW_CONN_HIRESYNC_{SOURCE.upper()}"] = json.dumps(
            {"conn_type": "http", "host": sim.url, "login": sim.client_id, "password": sim.client_secret})
        print(f"AIView simulator: {sim.url} ({count} interview results, some defective, some re-scored)")
        with _output_to(log_file):
            dag = _load_dag()
        print("\n== Run 1: first sync through Airflow (dag.test) ==")
        if not _show(settings, _run(dag, log_file)):
            return 1
        ids = sim.rescore(rescore)
        print(f"\n== The vendor re-scores {len(ids)} interviews; run 2 pulls only what changed ==")
        if not _show(settings, _run(dag, log_file)):
            return 1
        records = sim.records()
    print("\n== After the AI interview: re-interviews, offers, hires, and later the performance ratings ==")
    story = hiring_story(settings, records)
    print(f"  group HR status feed  {story['feed']['recorded']} status changes recorded "
          f"({story['hired']} hired, people overrode the AI on {story['overridden']} failed interviews)")
    r = story["ratings"]
    print(f"  performance ratings   {r.loaded} loaded from the EHR's file drop, {r.quarantined} quarantined "
          f"({', '.join(f'{k} {v}' for k, v in sorted(r.reasons.items()))})")
    html_path, xlsx_path = story["report"]
    with _output_to(log_file):
        pass  # flush whatever Airflow still had buffered into the log, not onto the screen
    _where(settings, log_file)
    print("\n== The HR report ==")
    print(f"  HTML (open it in a browser, works offline)  {html_path}")
    print(f"  Excel (the same tables)                     {xlsx_path}")
    return 0


def hiring_story(settings, records: list[dict], vendor: str = SOURCE) -> dict:
    """The group HR system's status feed (simulator) pulled into the hub, the EHR's rating file
    imported, and the HR report written for HR (policy.yaml user hr_admin)."""
    from simulators.hrtargets import GroupHRSimulator
    from simulators.story import advance_funnel, write_ratings

    from hiresync.delivery.workflow import pull
    from hiresync.ingest.ratings import drop_folder, import_drop
    from hiresync.report.access import viewer_for
    from hiresync.report.render import build, local_stamp, write

    with GroupHRSimulator() as grouphr:
        os.environ["AIRFLOW_CONN_HIRESYNC_GROUPHR"] = json.dumps(
            {"conn_type": "http", "host": grouphr.url, "login": grouphr.client_id, "password": grouphr.client_secret})
        hired = advance_funnel(records, grouphr, vendor=vendor)
        overridden = len({c["externalKey"] for c in grouphr.status_changes if c["stage"] == "REINTERVIEWED"} & {
            f"{vendor}:{r['result_id']}" for r in records if r.get("evaluation", {}).get("result") == "fail"})
        feed = pull(settings, "grouphr")
    write_ratings(hired, drop_folder(settings))
    ratings = import_drop(settings)
    report = build(settings, viewer_for(settings, "hr_admin"))
    paths = write(report, settings.var_dir / "reports", f"hr-report-{local_stamp(settings)}")
    return {"feed": feed, "hired": len(hired), "overridden": overridden, "ratings": ratings, "report": paths,
            "figures": report.figures}


@contextmanager
def _output_to(log_file: Path):
    """Airflow's task logs go to a file so the demo prints a story, not Airflow's chatter.

    At the file-descriptor level: Airflow's structlog writers hold their own handle on stdout."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_file, "a", encoding="utf-8") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors or DAG_ID not in bag.dags:
        print(f"the DAG {DAG_ID} did not load: {bag.import_errors or 'not found'}", file=sys.stderr)
        raise SystemExit(1)
    return bag.dags[DAG_ID]


def _run(dag, log_file: Path):
    started = time.monotonic()
    with _output_to(log_file):
        dag_run = dag.test()
    return dag_run, time.monotonic() - started


def _show(settings, outcome) -> bool:
    from hiresync.hub.models import Quarantine, Run
    from hiresync.hub.store import transaction
    from hiresync.monitor.status import summary_of

    dag_run, seconds = outcome
    with transaction(settings.hub_url) as s:
        run = s.get(Run, f"{SOURCE}__{dag_run.run_id}")
        summary = summary_of(run) if run else None
        reasons = dict(s.execute(select(Quarantine.reason_code, func.count()).where(
            Quarantine.run_id == (run.id if run else "")).group_by(Quarantine.reason_code)).all())
    print(f"Airflow DAG run {dag_run.run_id}: {dag_run.state} in {seconds:.1f} s")
    if summary is None or str(dag_run.state) != "success":
        print(f"the run did not succeed: {summary and summary['error']}; see {settings.var_dir / 'demo-airflow.log'}")
        return False
    print(f"  pulled       {summary['pulled']:>6}  (since {summary['pulled_since']})")
    print(f"  inserted     {summary['inserted']:>6}")
    print(f"  updated      {summary['updated']:>6}")
    print(f"  unchanged    {summary['unchanged']:>6}  (already in the hub, or an older version in the same pull)")
    print(f"  quarantined  {summary['quarantined']:>6}  " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    print(f"  delivered    {summary['delivered']:>6}  to the EHR")
    print(f"  watermark    {summary['watermark_after']}")
    return True


def _where(settings, log_file: Path) -> None:
    from hiresync.hub.store import engine_for
    from hiresync.config.settings import safe_url

    with engine_for(settings.ehr_url).connect() as conn:
        from connectors.targets.ehr_sql import ehr_interview_results

        in_ehr = conn.scalar(select(func.count()).select_from(ehr_interview_results))
    transport = json.loads(os.environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT", "{}") or "{}")
    print("\n== Where things are ==")
    print(f"  EHR database  {safe_url(settings.ehr_url)}  ({in_ehr} interview results)")
    print(f"  hub database  {safe_url(settings.hub_url)}")
    print(f"  lineage       record lineage in the hub (table record_lineage); "
          f"OpenLineage events in {transport.get('log_file_path', '(transport not configured)')}")
    print(f"  Airflow logs  {log_file}")
    print("  next          .venv/bin/hiresync status    |    make airflow  (the same DAG in the Airflow UI)")


if __name__ == "__main__":
    sys.exit(main(count=int(os.environ.get("HIRESYNC_DEMO_COUNT", 2000))))
