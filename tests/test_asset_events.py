"""Each sync run's Asset event carries its counts and run id, and a downstream DAG is scheduled on them."""

from __future__ import annotations

from tests.test_dags import dagbag

COUNTS = ("pulled", "inserted", "updated", "unchanged", "quarantined", "delivered")


def test_the_asset_event_of_a_run_carries_its_counts_and_run_id(airflow_db, sqlite_settings, aiview):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    from hiresync.hub.models import Run
    from hiresync.hub.store import transaction

    dag_run = dagbag().dags["hiresync_sync_aiview"].test()
    assert dag_run.state == DagRunState.SUCCESS
    with create_session() as session:
        events = session.execute(
            select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == "hiresync://hub/interview_results/aiview",
                   AssetEvent.source_run_id == dag_run.run_id)).scalars().all()
        extras = [e.extra for e in events]
    assert len(extras) == 1
    extra = extras[0]
    with transaction(sqlite_settings.hub_url) as s:
        run = s.get(Run, f"aiview__{dag_run.run_id}")
    assert extra["run_id"] == run.id and extra["source"] == "aiview" and extra["status"] == "success"
    assert {k: extra[k] for k in COUNTS} == {k: getattr(run, k) for k in COUNTS}
    assert extra["pulled"] == extra["inserted"] + extra["updated"] + extra["unchanged"] + extra["quarantined"] > 0
    # counts and ids only: nothing personal rides on the event
    assert set(extra) <= {"run_id", "source", "status", "mapping_version", "watermark_after", *COUNTS}


def test_a_downstream_dag_is_scheduled_on_every_sources_results():
    from airflow.sdk import Asset

    bag = dagbag()
    assert bag.import_errors == {}
    digest = bag.dags["hiresync_results_digest"]
    uris = {a.uri for a in digest.timetable.asset_condition.objects}  # any of them: AssetAny
    for name in ("aiview", "zhiping", "kuaipin", "dept_reinterview"):
        assert f"hiresync://hub/interview_results/{name}" in uris
        outlets = {o.uri for o in bag.dags[f"hiresync_sync_{name}"].get_task("publish").outlets if isinstance(o, Asset)}
        assert f"hiresync://hub/interview_results/{name}" in outlets


def test_the_digest_reads_the_counts_from_the_events():
    from hiresync.monitor.progress import LINE_WIDTH
    from dags.hiresync_results_digest import digest_lines

    class Event:  # the two attributes of an Airflow AssetEvent the digest reads
        def __init__(self, uri, extra):
            self.asset, self.extra = type("A", (), {"uri": uri})(), extra

    events = {"hiresync_aiview_results": [Event("hiresync://hub/interview_results/aiview",
                                                 {"run_id": "aiview__r1", "source": "aiview", "status": "success",
                                                  "pulled": 10, "inserted": 7, "updated": 1, "unchanged": 1,
                                                  "quarantined": 1, "delivered": 8})],
              "hiresync_zhiping_results": [Event("hiresync://hub/interview_results/zhiping", {})]}
    lines, totals = digest_lines(events)
    assert totals == {"pulled": 10, "inserted": 7, "updated": 1, "unchanged": 1, "quarantined": 1, "delivered": 8}
    assert lines[0] == "aiview run aiview__r1: pulled 10, inserted 7, updated 1, unchanged 1, quarantined 1, delivered 8"
    assert "no counts" in lines[1] and all(len(line) <= LINE_WIDTH for line in lines)
