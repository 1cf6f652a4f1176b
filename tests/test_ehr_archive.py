"""The EHR archive as HR reads it (schema version 2): Chinese labels beside the codes, interview
times in the group's time zone with the offset beside UTC, one row per dimension score with its
competency; and the in-place upgrade of version-1 EHR tables on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import Column, func, DateTime, Integer, MetaData, Numeric, String, Table, Text, create_engine, inspect, select

from connectors.targets import ehr_sql
from connectors.targets.ehr_sql import ehr_dimension_scores, ehr_interview_results
from hiresync.config.settings import Settings
from hiresync.delivery.targets import competency_resolver
from hiresync.hub.models import DimensionScore, InterviewResult
from hiresync.hub.store import engine_for, transaction
from hiresync.pipeline.runner import run_source
from tests.conftest import SERVER_URLS, _fresh_server_database


def _v1_tables(md: MetaData):
    """The EHR tables exactly as version 1 created them (before this change)."""
    Table("ehr_candidates", md, Column("candidate_key", String(36), primary_key=True), Column("full_name", String(64)),
          Column("national_id", String(18)), Column("mobile", String(20)), Column("email", String(255)),
          Column("updated_at", DateTime))
    return Table(
        "ehr_interview_results", md,
        Column("result_key", String(200), primary_key=True), Column("candidate_key", String(36), index=True),
        Column("vendor", String(64)), Column("position_code", String(64)), Column("position_name", String(255)),
        Column("department", String(255)), Column("business_unit", String(255)),
        Column("interview_started_at", DateTime), Column("interview_completed_at", DateTime),
        Column("overall_score", Numeric(9, 2, asdecimal=False)), Column("score_max", Numeric(9, 2, asdecimal=False)),
        Column("status", String(20)), Column("recommendation", String(32)), Column("ai_comment", Text),
        Column("dimension_scores", Text), Column("video_url", Text), Column("video_expires_at", DateTime),
        Column("report_url", Text), Column("interviewer", String(255)), Column("source_updated_at", DateTime),
        Column("hub_version", Integer), Column("idempotency_key", String(64)), Column("delivered_at", DateTime))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def ehr_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ehr.db'}"
        return
    base = SERVER_URLS[request.param]
    if not base:
        pytest.skip(f"{request.param} is not configured here")
    url, drop = _fresh_server_database(base)
    yield url
    drop()


def _resolver():
    return competency_resolver(Settings.from_env())


def test_version_1_tables_are_upgraded_in_place_and_existing_rows_backfilled(ehr_url):
    engine = create_engine(ehr_url)
    md = MetaData()
    old = _v1_tables(md)
    md.create_all(engine)
    dims = [{"code": "communication", "name": "沟通表达", "score": 80.0, "comment": "表达流畅"},
            {"code": "creativity", "name": "创造力", "score": 55.5, "comment": None}]
    with engine.begin() as conn:
        conn.execute(old.insert(), [
            dict(result_key="aiview:R1", candidate_key="c1", vendor="aiview", status="passed", recommendation="recommended",
                 interview_started_at=datetime(2026, 11, 3, 1, 37), interview_completed_at=datetime(2026, 11, 3, 2, 5),
                 dimension_scores=json.dumps(dims, ensure_ascii=False), hub_version=1),
            dict(result_key="zhiping:Z9", candidate_key="c2", vendor="zhiping", status="pending_review",
                 recommendation=None, interview_started_at=datetime(2026, 11, 30, 16, 30), interview_completed_at=None,
                 dimension_scores=json.dumps([{"code": "logic", "name": "逻辑思维", "score": 60, "comment": None}]),
                 hub_version=3),
        ])

    target = ehr_sql.EhrSqlTarget(ehr_url, engine=engine, competency_of=_resolver())
    columns = {c["name"] for c in inspect(engine).get_columns("ehr_interview_results")}
    assert set(ehr_sql.V2_COLUMNS) <= columns and "dimension_scores" in columns  # the JSON column stays
    with engine.connect() as conn:
        rows = {r.result_key: r for r in conn.execute(select(ehr_interview_results))}
        children = conn.execute(select(ehr_dimension_scores).order_by(ehr_dimension_scores.c.result_key,
                                                                      ehr_dimension_scores.c.seq)).all()
        assert conn.scalar(select(ehr_sql.ehr_schema_version.c.version)) == ehr_sql.SCHEMA_VERSION
    r1, z9 = rows["aiview:R1"], rows["zhiping:Z9"]
    assert (r1.status, r1.status_label, r1.recommendation_label) == ("passed", "通过", "推荐")
    assert (z9.status_label, z9.recommendation_label) == ("待定", None)
    # 01:37 UTC is 09:37 in Beijing; the UTC column is unchanged beside it.
    assert r1.interview_started_at == datetime(2026, 11, 3, 1, 37)
    assert (r1.interview_started_local, r1.interview_started_offset, r1.time_zone) == (
        datetime(2026, 11, 3, 9, 37), "+08:00", "Asia/Shanghai")
    assert z9.interview_started_local == datetime(2026, 12, 1, 0, 30)  # past midnight: the next day
    assert (z9.interview_completed_local, z9.interview_completed_offset) == (None, None)
    assert [(c.result_key, c.dimension_code, c.competency_code, c.competency_name, c.score) for c in children] == [
        ("aiview:R1", "communication", "communication", "沟通能力", 80.0),
        ("aiview:R1", "creativity", "aiview:creativity", "aiview:creativity", 55.5),  # no rule: the vendor's code
        ("zhiping:Z9", "logic", "logical_thinking", "逻辑思维", 60.0),  # ZhiPing's rule is on the name 逻辑思维
    ]

    # Running it again finds nothing to do; newer deliveries replace the dimension rows, erase removes them.
    assert ehr_sql.upgrade(engine, target) == 0
    payload = {"candidate": {"candidate_key": "c1"},
               "result": {"result_key": "aiview:R1", "vendor": "aiview", "status": "failed", "version": 2,
                          "started_at": "2026-11-03T09:37:00+08:00"},
               "dimensions": [{"code": "logic", "name": "逻辑思维", "score": 40.0}]}
    target.upsert([("k2", payload)])
    with engine.connect() as conn:
        assert conn.execute(select(ehr_interview_results.c.status_label).where(
            ehr_interview_results.c.result_key == "aiview:R1")).scalar() == "未通过"
        assert conn.execute(select(ehr_dimension_scores.c.competency_code).where(
            ehr_dimension_scores.c.result_key == "aiview:R1")).scalars().all() == ["logical_thinking"]
    target.erase("c1", [])
    with engine.connect() as conn:
        assert conn.execute(select(ehr_dimension_scores.c.result_key)).scalars().all() == ["zhiping:Z9"]
    engine.dispose()


def test_a_sync_delivers_labels_local_times_and_a_row_per_dimension(sqlite_settings, aiview):
    run_source("aiview", sqlite_settings)
    engine = engine_for(sqlite_settings.ehr_url)
    with engine.connect() as conn:
        results = conn.execute(select(ehr_interview_results)).all()
        children = conn.execute(select(ehr_dimension_scores)).all()
    with transaction(sqlite_settings.hub_url) as s:
        hub_dims = s.scalar(select(func.count()).select_from(DimensionScore).join(InterviewResult))
    assert results and len(children) == hub_dims == sum(len(json.loads(r.dimension_scores)) for r in results)
    labels = {"passed": "通过", "failed": "未通过", "pending_review": "待定", "incomplete": "未完成"}
    assert all(r.status_label == labels[r.status] for r in results)
    for r in results:
        assert r.interview_started_offset == "+08:00"
        assert (r.interview_started_local - r.interview_started_at).total_seconds() == 8 * 3600
    # Every AIView dimension maps onto the model: Chinese competency names, no vendor code left.
    assert {c.competency_name for c in children} <= {"逻辑思维", "沟通能力", "专业能力", "团队协作", "抗压能力",
                                                     "学习能力", "情绪稳定性"}


def test_the_group_time_zone_is_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("HIRESYNC_TIMEZONE", "Europe/Berlin")
    settings = Settings.from_env()
    target = ehr_sql.EhrSqlTarget(f"sqlite:///{tmp_path / 'e.db'}", time_zone=settings.timezone)
    assert target.local("2026-11-03T01:37:00+00:00") == (datetime(2026, 11, 3, 2, 37), "+01:00")
    monkeypatch.setenv("HIRESYNC_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="HIRESYNC_TIMEZONE must be an IANA time zone"):
        Settings.from_env()


@pytest.mark.parametrize("zone, moment, expected", [
    ("Asia/Shanghai", "2026-11-03T01:37:00+00:00", (datetime(2026, 11, 3, 9, 37), "+08:00")),
    ("Asia/Kolkata", "2026-11-03T01:37:00+00:00", (datetime(2026, 11, 3, 7, 7), "+05:30")),
    ("America/St_Johns", "2026-07-03T12:00:00+00:00", (datetime(2026, 7, 3, 9, 30), "-02:30")),  # summer time
    ("America/St_Johns", "2026-12-03T12:00:00+00:00", (datetime(2026, 12, 3, 8, 30), "-03:30")),
    ("UTC", "2026-12-03T12:00:00+00:00", (datetime(2026, 12, 3, 12, 0), "+00:00")),
])
def test_local_times_carry_their_zones_offset(zone, moment, expected):
    """A group outside China: the offset HR reads beside the wall-clock time, half hours and summer
    time included, spelled as ISO 8601 spells it."""
    target = ehr_sql.EhrSqlTarget("sqlite://", time_zone=zone)
    assert target.local(moment) == expected
    target.engine.dispose()


def test_two_processes_creating_the_tables_at_once_both_go_on(ehr_url):
    """Two sources' deliver tasks starting on a new EHR database at once both find ehr_candidates
    missing; the other creates it between this one's look and its CREATE (here: in a DDL event, on a
    connection of its own). This one's CREATE fails, and it goes on with the table the other made."""
    from sqlalchemy import event

    engine = create_engine(ehr_url)
    other = create_engine(ehr_url)
    raced = []

    def the_other_creates_it_first(table, connection, **kw):
        if not raced:
            raced.append(table.name)
            table.create(other)

    event.listen(ehr_sql.ehr_candidates, "before_create", the_other_creates_it_first)
    try:
        ehr_sql.EhrSqlTarget(ehr_url, engine=engine, competency_of=_resolver())
    finally:
        event.remove(ehr_sql.ehr_candidates, "before_create", the_other_creates_it_first)
        other.dispose()
    assert raced == ["ehr_candidates"]
    assert {"ehr_candidates", "ehr_interview_results", "ehr_dimension_scores"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.scalar(select(ehr_sql.ehr_schema_version.c.version)) == ehr_sql.SCHEMA_VERSION
    engine.dispose()
