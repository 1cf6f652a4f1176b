"""File drops: departments' re-interview sheets (Excel and CSV, Chinese headers) in a folder are
read once, mapped, and merged into the candidate's archive by resident ID; a bad row is quarantined
with its file and row number. Real files, real AIView simulator for the candidates, every hub DB."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest
import yaml
from openpyxl import Workbook
from sqlalchemy import select
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import Candidate, FileDrop, InterviewResult, Quarantine
from hiresync.hub.store import transaction
from hiresync.pipeline.runner import run_source
from simulators.aiview import AIViewSimulator
from tests.helpers import REPO, connect, leaks, personal_values

SOURCE = "dept_reinterview"
HEADER = ["序号", "姓名", "身份证号", "岗位编码", "应聘岗位", "用人部门", "复试时间", "复试得分", "复试结论", "复试评语", "备注"]


@pytest.fixture
def drop(settings, tmp_path, monkeypatch):
    """A drop folder, a profile pointing at it, and sources.yaml with aiview + dept_reinterview."""
    folder = tmp_path / "drops"
    folder.mkdir()
    doc = yaml.safe_load((REPO / "connectors/profiles/dept_reinterview.yaml").read_text(encoding="utf-8"))
    doc["folder"] = str(folder)
    profile = tmp_path / "dept_reinterview.yaml"
    profile.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": {
        "aiview": {"profile": str(REPO / "connectors/profiles/aiview.yaml"), "mapping": str(REPO / "mappings/aiview.yaml")},
        SOURCE: {"profile": str(profile), "mapping": str(REPO / "mappings/dept_reinterview.yaml")},
    }}), encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(sources))
    from hiresync.config.settings import Settings

    return Settings.from_env(), folder


@pytest.fixture
def candidates(monkeypatch):
    """AI-interviewed candidates the departments re-interview (clean ones only)."""
    with AIViewSimulator(count=30, seed=4, defect_rate=0, rescore_rate=0) as sim:
        connect(monkeypatch, sim)
        yield sim, sim.records()


def sheet_rows(records: list[dict], conclusions: list[str]) -> list[list]:
    return [[i + 1, r["candidate"]["name"], r["candidate"]["id_card"], r["job"]["code"], r["job"]["title"],
             r["job"]["department"], datetime(2026, 12, 1, 9 + i % 8, 30), 60 + 5 * (i % 8), c, f"复试表现{c}", ""]
            for i, (r, c) in enumerate(zip(records, conclusions))]


def write_xlsx(path, rows: list[list]) -> None:
    book = Workbook()
    ws = book.active
    ws.title = "复试记录"
    ws.append(HEADER)
    for row in rows:
        ws.append(row)
    ws.append([None] * len(HEADER))  # the blank rows Excel sheets end with
    book.save(path)


def write_csv(path, rows: list[list]) -> None:
    lines = [",".join(HEADER)] + [",".join("" if v is None else v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime)
                                          else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM


def hub(settings, model, *where) -> list:
    with transaction(settings.hub_url) as s:
        return list(s.scalars(select(model).where(*where)))


def test_excel_and_csv_rows_merge_into_the_candidates_archive_and_files_are_read_once(drop, candidates):
    settings, folder = drop
    sim, records = candidates
    assert run_source("aiview", settings)["inserted"] == 30
    ai = {r.candidate_id for r in hub(settings, InterviewResult, InterviewResult.vendor == "aiview")}
    write_xlsx(folder / "研发中心复试_12月.xlsx", sheet_rows(records[:6], ["通过", "不通过", "待定"] * 2))
    write_csv(folder / "销售部复试_12月.csv", sheet_rows(records[6:10], ["通过"] * 4))

    first = run_source(SOURCE, settings)
    assert first["status"] == "success"
    assert (first["pulled"], first["inserted"], first["quarantined"]) == (10, 10, 0)
    merged = hub(settings, InterviewResult, InterviewResult.vendor == SOURCE)
    assert {r.candidate_id for r in merged} <= ai  # the same people, found by resident ID: no new candidate
    assert len(hub(settings, Candidate)) == 30
    by_key = {r.vendor_result_id: r for r in merged}
    row3 = by_key["研发中心复试_12月.xlsx#4"]  # the 3rd data row is the sheet's row 4
    assert (row3.status, row3.overall_score, row3.interviewer) == ("pending_review", 70.0, "业务部门复试")
    assert by_key["销售部复试_12月.csv#2"].status == "passed"
    assert by_key["销售部复试_12月.csv#2"].started_at.replace(tzinfo=None) == datetime(2026, 12, 1, 1, 30)  # 09:30 Beijing
    assert sorted(f.file_name for f in hub(settings, FileDrop)) == ["研发中心复试_12月.xlsx", "销售部复试_12月.csv"]

    # Read once: a second run, and the same bytes under another name, pull nothing.
    shutil.copy(folder / "销售部复试_12月.csv", folder / "销售部复试_12月(1).csv")
    assert run_source(SOURCE, settings)["pulled"] == 0

    # A corrected copy (other bytes, same name) is read again and updates the same results.
    write_csv(folder / "销售部复试_12月.csv", sheet_rows(records[6:10], ["通过", "不通过", "通过", "通过"]))
    third = run_source(SOURCE, settings)
    assert (third["pulled"], third["updated"], third["unchanged"]) == (4, 1, 3)
    assert len(hub(settings, InterviewResult, InterviewResult.vendor == SOURCE)) == 10


def test_a_bad_row_is_quarantined_with_its_file_and_row_number_and_the_rest_loads(drop, candidates):
    settings, folder = drop
    _, records = candidates
    rows = sheet_rows(records[:5], ["通过"] * 5)
    good_id = rows[1][2]
    rows[1][2] = good_id[:-1] + ("0" if good_id[-1] != "0" else "1")  # the sheet's row 3: checksum broken
    rows[3][8] = "再议"                                                # row 5: not a known conclusion
    write_xlsx(folder / "复试.xlsx", rows)

    summary = run_source(SOURCE, settings)
    assert (summary["pulled"], summary["inserted"], summary["quarantined"]) == (5, 3, 2)
    quarantined = {q.vendor_result_id: q for q in hub(settings, Quarantine, Quarantine.source == SOURCE)}
    assert set(quarantined) == {"复试.xlsx#3", "复试.xlsx#5"}
    assert {p["rule"] for p in quarantined["复试.xlsx#3"].problems} == {"ID_CHECKSUM"}
    assert {p["rule"] for p in quarantined["复试.xlsx#5"].problems} == {"ENUM"}

    listing = CliRunner().invoke(app, ["quarantine", "list", "--source", SOURCE])
    assert listing.exit_code == 0 and "复试.xlsx#3" in listing.output and "ID_CHECKSUM" in listing.output
    assert not leaks(listing.output, personal_values(records[:5]) | {rows[1][2]})


def test_an_unreadable_file_is_skipped_with_its_reason_and_read_once_fixed(drop, candidates, caplog):
    settings, folder = drop
    _, records = candidates
    rows = sheet_rows(records[:3], ["通过"] * 3)
    write_csv(folder / "a_good.csv", rows)
    (folder / "b_broken.xlsx").write_bytes(b"not a workbook")
    (folder / "c_columns.csv").write_text("姓名,身份证号\n张三,110101199003070000\n", encoding="utf-8-sig")
    (folder / "d_gbk.csv").write_bytes(",".join(HEADER).encode("gbk") + b"\n")

    summary = run_source(SOURCE, settings)
    assert summary["pulled"] == 3 and summary["inserted"] == 3
    assert [f.file_name for f in hub(settings, FileDrop)] == ["a_good.csv"]
    assert "b_broken.xlsx" in caplog.text and "not a readable .xlsx" in caplog.text
    assert "c_columns.csv" in caplog.text and "lacks column(s)" in caplog.text and "岗位编码" in caplog.text
    assert "d_gbk.csv" in caplog.text and "csv_encoding" in caplog.text

    (folder / "c_columns.csv").unlink()
    write_xlsx(folder / "b_broken.xlsx", sheet_rows(records[3:5], ["待定"] * 2))
    again = run_source(SOURCE, settings)
    assert (again["pulled"], again["inserted"]) == (2, 2)


def test_a_broken_file_drop_profile_names_the_file_and_the_key(tmp_path):
    from connectors.kinds import load_profile
    from hiresync.errors import ConfigError

    doc = yaml.safe_load((REPO / "connectors/profiles/dept_reinterview.yaml").read_text(encoding="utf-8"))
    doc["patterns"] = ["*.xls"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert err.value.key == "patterns.0" and str(path) in str(err.value)


def test_personal_data_in_a_file_name_goes_nowhere_and_symlinks_out_of_the_folder_are_not_followed(
        drop, candidates, tmp_path, caplog):
    """Finding 8: `复试_张伟_<ID>.csv` must not put the ID into the hub, quarantine list or logs; a symlink
    in the drop folder pointing outside it is not read."""
    from tests.helpers import hub_plaintext

    settings, folder = drop
    _, records = candidates
    rec = records[0]
    name, nid = rec["candidate"]["name"], rec["candidate"]["id_card"]
    rows = sheet_rows(records[:3], ["通过"] * 3)
    rows[2][8] = "再议"  # one row quarantined: its key must not carry the file name either
    bad_name = f"复试_{name}_{nid}.csv"
    write_csv(folder / bad_name, rows)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write_csv(outside / "secret.csv", sheet_rows(records[3:5], ["通过"] * 2))
    (folder / "linked.csv").symlink_to(outside / "secret.csv")

    summary = run_source(SOURCE, settings)
    assert (summary["pulled"], summary["inserted"], summary["quarantined"]) == (3, 2, 1)  # nothing valid lost
    text = hub_plaintext(settings.hub_url)
    assert nid not in text and bad_name not in text and f"{name}_{nid}" not in text
    listing = CliRunner().invoke(app, ["quarantine", "list", "--source", SOURCE])
    assert listing.exit_code == 0 and nid not in listing.output
    assert nid not in caplog.text
    assert "file 1 of 2" in caplog.text and "personal data in its name" in caplog.text  # its position, not its name
    assert "file 2 of 2" in caplog.text and "outside the drop folder" in caplog.text
    assert {r.vendor_result_id for r in hub(settings, InterviewResult, InterviewResult.vendor == SOURCE)}.isdisjoint(
        {f"linked.csv#{i}" for i in range(2, 4)})
    # A corrected copy under the same name updates the same results (the key is stable).
    rows[2][8] = "通过"
    write_csv(folder / bad_name, rows)
    again = run_source(SOURCE, settings)
    assert (again["pulled"], again["inserted"]) == (3, 1) and again["quarantined"] == 0
