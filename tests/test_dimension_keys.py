"""Dimension rows keyed by (result, place in the vendor's list): migration 0022 numbers the rows a
hub already holds in their old id order, per result, and back, on every hub database."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from sqlalchemy import insert, select, text

from hiresync.hub.models import Candidate, DimensionScore, InterviewResult
from hiresync.hub.store import alembic_config, engine_for
from tests.helpers import digest

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_migration_0022_numbers_each_results_dimensions_in_their_order_and_back(blank_database):
    url = blank_database
    with engine_for(url).begin() as conn:
        cfg = alembic_config(url, conn)
        command.upgrade(cfg, "0021")
        conn.execute(insert(Candidate.__table__), [dict(
            candidate_key="c1", key_version=1, national_id_bidx=digest("c1"), national_id_masked="110***",
            national_id_enc="v1:eA==", full_name_enc="v1:eQ==", full_name_masked="王*")])
        cid = conn.execute(select(Candidate.id)).scalar()
        conn.execute(insert(InterviewResult.__table__), [dict(
            vendor="aiview", vendor_result_id=key, candidate_id=cid, status="passed", source_updated_at=NOW,
            mapping_version="1", content_hash=digest(key), version=1, first_run_id="r", last_run_id="r",
            updated_at=NOW) for key in ("a", "b")])
        ids = dict(conn.execute(select(InterviewResult.vendor_result_id, InterviewResult.id)).all())
        # Interleaved, as two results loaded in one batch are: each result's own order must hold.
        for result, code in (("b", "logic"), ("a", "沟通表达"), ("b", "teamwork"), ("a", "logic"), ("b", "learning")):
            conn.execute(text("INSERT INTO dimension_scores (result_id, code, score) VALUES (:r, :c, 80)"),
                         {"r": ids[result], "c": code})

        command.upgrade(cfg, "0022")
        keyed = conn.execute(select(DimensionScore.result_id, DimensionScore.seq, DimensionScore.code)
                             .order_by(DimensionScore.result_id, DimensionScore.seq)).all()
        assert [tuple(r) for r in keyed] == [(ids["a"], 0, "沟通表达"), (ids["a"], 1, "logic"),
                                             (ids["b"], 0, "logic"), (ids["b"], 1, "teamwork"),
                                             (ids["b"], 2, "learning")]

        command.downgrade(cfg, "0021")
        by_id = conn.execute(text("SELECT result_id, code FROM dimension_scores ORDER BY id")).all()
        assert [tuple(r) for r in by_id] == [(ids["a"], "沟通表达"), (ids["a"], "logic"), (ids["b"], "logic"),
                                             (ids["b"], "teamwork"), (ids["b"], "learning")]
