"""Performance ratings (绩效) as a source of their own: a file drop matched to candidates by blind
index, the rating encrypted, no ID number kept, bad rows quarantined with field and rule (never
the value), their own retention, gone with the person on erasure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import AuditEvent, Candidate, PerformanceRating, Quarantine
from hiresync.hub.store import transaction
from hiresync.ingest.ratings import import_drop, ratings_by_candidate
from hiresync.privacy.identifiers import id_check_char
from hiresync.privacy.keys import hub_keys
from hiresync.privacy.retention import purge
from hiresync.tools.subject import erase
from hiresync.report.facts import load_facts

runner = CliRunner()


def rid(first17: str) -> str:
    return first17 + id_check_char(first17)


KNOWN = rid("11010519900307123")
OTHER = rid("31010119850214456")
UNKNOWN = rid("44030119921111789")


def seed_candidates(settings) -> None:
    keys = hub_keys(settings)
    with transaction(settings.hub_url) as s:
        for cid, nid in ((1, KNOWN), (2, OTHER)):
            ck = f"cand-{cid}"
            s.add(Candidate(id=cid, candidate_key=ck, key_version=keys.active,
                            full_name_enc=keys.encrypt("张三", f"candidates.full_name:{ck}"), full_name_masked="张*",
                            national_id_enc=keys.encrypt(nid, f"candidates.national_id:{ck}"),
                            national_id_bidx=keys.blind_index(nid, "national_id"), national_id_masked="x"))


def write_drop(folder, name: str, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("resident_id,candidate_key,period,rating\n" + "\n".join(lines) + "\n", encoding="utf-8")


def test_a_rating_file_loads_good_rows_and_quarantines_bad_ones_with_reasons(settings, tmp_path):
    seed_candidates(settings)
    drop = tmp_path / "drop"
    spaced = f"{KNOWN[:6]} {KNOWN[6:14]} {KNOWN[14:]}"
    write_drop(drop, "2026h1.csv", [
        f"{spaced},,2026-H1,4.5",              # by resident ID, typed in groups
        ",cand-2,2026-Q3,3",                   # by candidate key
        f"{UNKNOWN},,2026-H1,4",               # nobody we know
        f"{KNOWN[:17]}0,,2026-H1,4",           # checksum wrong
        f"{OTHER},,2026-Q5,4",                 # no such quarter
        f"{OTHER},,2026-H1,7",                 # out of 1..5
        f"{OTHER},,2026-H2,优",                 # not a number
        ",,2026-H1,3",                         # no person at all
    ])
    result = runner.invoke(app, ["ratings", "import", "--folder", str(drop)])
    assert result.exit_code == 0, result.output
    assert ("rows 8: loaded 2, quarantined 6 (ID_CHECKSUM 1, NOT_A_NUMBER 1, NOT_NULL 1, PERIOD_FORMAT 1, RANGE 1, "
            "UNKNOWN_PERSON 1)") in result.output
    assert not any(v in result.output for v in (KNOWN, OTHER, UNKNOWN))

    with transaction(settings.hub_url) as s:
        q = {r.vendor_result_id: r for r in s.scalars(select(Quarantine).where(Quarantine.source == "performance"))}
        stored = s.execute(select(PerformanceRating.candidate_id, PerformanceRating.period,
                                  PerformanceRating.rating_enc)).all()
        ratings = sorted(ratings_by_candidate(s, hub_keys(settings)))
    assert {k: (v.problems[0]["field"], v.reason_code) for k, v in q.items()} == {
        "2026h1.csv#4": ("resident_id", "UNKNOWN_PERSON"), "2026h1.csv#5": ("resident_id", "ID_CHECKSUM"),
        "2026h1.csv#6": ("period", "PERIOD_FORMAT"), "2026h1.csv#7": ("rating", "RANGE"),
        "2026h1.csv#8": ("rating", "NOT_A_NUMBER"), "2026h1.csv#9": ("resident_id", "NOT_NULL")}
    listing = str([v.problems for v in q.values()])
    assert not any(v in listing for v in (KNOWN, OTHER, UNKNOWN, "2026-Q5", "优")) and "440301********" in listing
    # minimised and encrypted: the rating is not readable in the table, no ID number is kept
    assert ratings == [(1, "2026-H1", 4.5), (2, "2026-Q3", 3.0)]
    assert all("4.5" not in enc and KNOWN not in enc for _, _, enc in stored)

    # the same file again is not read twice; a later file for the same period replaces the rating
    write_drop(drop, "2026h1-fix.csv", [",cand-1,2026-H1,3.5"])
    again = runner.invoke(app, ["ratings", "import", "--folder", str(drop)]).output
    assert "files 1 (already read: 1), rows 1: loaded 1, quarantined 0" in again
    with transaction(settings.hub_url) as s:
        assert sorted(ratings_by_candidate(s, hub_keys(settings)))[0] == (1, "2026-H1", 3.5)
        assert s.scalar(select(func.count()).select_from(PerformanceRating)) == 2
    assert sorted(load_facts(settings).ratings["rating"]) == [3.0, 3.5]


def test_ratings_have_their_own_retention_and_go_with_the_person(settings, tmp_path):
    seed_candidates(settings)
    write_drop(tmp_path / "d", "r.csv", [f"{KNOWN},,2026,4", f"{OTHER},,2026,2"])
    import_drop(settings, tmp_path / "d")
    erase(settings, hub_keys(settings), OTHER, "test")
    with transaction(settings.hub_url) as s:
        assert s.execute(select(PerformanceRating.candidate_id)).scalars().all() == [1]
    # policy.yaml keeps ratings 1095 days
    assert purge(settings, now=datetime.now(timezone.utc) + timedelta(days=1000))["performance_ratings"] == 0
    assert purge(settings, now=datetime.now(timezone.utc) + timedelta(days=1100))["performance_ratings"] == 1
    with transaction(settings.hub_url) as s:
        assert s.scalar(select(func.count()).select_from(PerformanceRating)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.subject_ref.like("performance_rating:%"))) == 1


def test_a_missing_folder_or_a_wrong_header_is_one_clear_line(sqlite_settings, tmp_path):
    r = runner.invoke(app, ["ratings", "import", "--folder", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "source performance: drop folder" in r.output
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.csv").write_text("身份证,绩效\n1,2\n", encoding="utf-8")
    r = runner.invoke(app, ["ratings", "import", "--folder", str(tmp_path / "d")])
    assert r.exit_code == 1 and "header row lacks column(s) resident_id, candidate_key, period, rating" in r.output
