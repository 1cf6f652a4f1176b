"""`hiresync report`: one offline HTML file with its charts and an Excel workbook with the same
tables, Chinese labels, the role matrix of policy.yaml (HR / a department / IT), and no empty
charts or bare correlations."""

from __future__ import annotations

import os
import re
from datetime import date

import pandas as pd
from openpyxl import load_workbook
from sqlalchemy import update
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import Candidate
from hiresync.hub.store import transaction
from hiresync.privacy.keys import hub_keys
from hiresync.privacy.pii import mask_name
from hiresync.report import render
from hiresync.report.access import Viewer
from hiresync.report.facts import Facts
from tests.test_report_analytics import seed_hub

runner = CliRunner()
NAMES = {cid: name for cid, name in enumerate(["王小明", "李娜", "张伟强", "刘洋", "陈静怡", "杨帆", "赵磊", "黄蕾"], 1)}


def seed(settings) -> None:
    seed_hub(settings.hub_url)
    keys = hub_keys(settings)
    with transaction(settings.hub_url) as s:
        for cid, name in NAMES.items():
            s.execute(update(Candidate).where(Candidate.id == cid).values(
                full_name_enc=keys.encrypt(name, f"candidates.full_name:c{cid}"), full_name_masked=mask_name(name)))


def run_report(tmp_path, *args) -> tuple[str, str, object]:
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "out"), *args])
    if result.exit_code != 0:
        return result.output, "", None
    html_file = re.search(r"report: (\S+)", result.output).group(1)
    xlsx_file = re.search(r"workbook: (\S+)", result.output).group(1)
    return result.output, open(html_file, encoding="utf-8").read(), load_workbook(xlsx_file)


def values(html: str, chart: str) -> dict[str, float]:
    svg = re.search(rf'<svg[^>]*data-chart="{re.escape(chart)}".*?</svg>', html, re.S).group(0)
    return {lab: float(v) for lab, v in re.findall(r'data-label="([^"]*)" data-value="([^"]*)"', svg)}


def test_hr_gets_every_panel_offline_with_the_hub_s_numbers(sqlite_settings, tmp_path):
    seed(sqlite_settings)
    out, html, wb = run_report(tmp_path, "--user", "hr_admin")
    assert wb is not None, out
    # self-contained: no script, nothing fetched from anywhere
    assert "<script" not in html and not re.search(r'(src|href)=', html)
    assert values(html, "funnel") == {"AI 面试通过": 4, "复试": 3, "录用通知": 2, "入职": 1}
    assert values(html, "by_position") == {"P-RD-001 后端开发工程师": 0.75, "P-SA-001 销售代表": 0.25}
    assert values(html, "by_vendor") == {"aiview": 0.75, "zhiping": 0.25}
    assert values(html, "decision") == {"AI 通过后最终入职": 0.25, "AI 未通过、经人工复核后被推翻": 0.5}
    assert values(html, "health") == {"aiview": 0.05}
    for label in ("各岗位通过率", "招聘漏斗", "AI 决策与最终结果", "胜任力与绩效", "数据健康", "距上一步天数（中位数）"):
        assert label in html
    assert "张伟强" in html  # HR sees the name of the AI-failed candidate a person let go on
    for line in out.splitlines():  # HR's copy holds names: its owner's only
        assert os.stat(line.split(": ", 1)[1]).st_mode & 0o777 == 0o600
    # the workbook has the same tables
    assert {"各岗位通过率", "招聘漏斗", "数据健康", "人工推翻名单"} <= set(wb.sheetnames)
    funnel = [[c.value for c in row] for row in wb["招聘漏斗"].iter_rows()]
    assert funnel[0] == ["阶段", "人数", "较上一步转化率", "距上一步天数（中位数）"]
    assert [r[1] for r in funnel[1:]] == [4, 3, 2, 1] and funnel[3][3] == "8.5"


def test_a_department_sees_only_its_positions_with_names_masked(sqlite_settings, tmp_path):
    seed(sqlite_settings)
    out, html, wb = run_report(tmp_path, "--user", "sales_lead")
    assert wb is not None, out
    assert "P-SA-001" in html and "P-RD-001" not in html and "研发中心" not in html
    assert values(html, "by_position") == {"P-SA-001 销售代表": 0.25}
    assert 'data-section="health"' not in html and 'data-section="by_department"' not in html
    assert not any(name in html for name in NAMES.values())
    text = "".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row)
    assert "P-RD-001" not in text and not any(name in text for name in NAMES.values())

    denied = runner.invoke(app, ["report", "--user", "sales_lead", "--department", "研发中心", "--out", str(tmp_path)])
    assert denied.exit_code == 1 and "may see only the department of its own role" in denied.output


def test_it_sees_only_operational_panels_and_no_personal_data(sqlite_settings, tmp_path):
    seed(sqlite_settings)
    out, html, wb = run_report(tmp_path, "--user", "it_ops")
    assert wb is not None, out
    assert re.findall(r'data-section="([^"]+)"', html) == ["health"]
    assert "P-SA-001" not in html and "P-RD-001" not in html
    assert not any(n in html for name in NAMES.values() for n in (name, mask_name(name)))


def test_an_unknown_user_or_a_bad_date_is_one_clear_line(sqlite_settings, tmp_path):
    r = runner.invoke(app, ["report", "--user", "mallory", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "user 'mallory' has no report access (policy.yaml report_access.users)" in r.output
    r = runner.invoke(app, ["report", "--user", "hr_admin", "--from", "2026-13-01", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "--from: not a date (rule: YYYY-MM-DD)" in r.output and "Traceback" not in r.output


def test_a_period_or_department_without_data_says_so_instead_of_empty_charts(sqlite_settings, tmp_path):
    seed(sqlite_settings)
    for args in (["--from", "2030-01-01"], ["--department", "财务部"]):
        out, html, wb = run_report(tmp_path, "--user", "hr_admin", *args)
        assert wb is not None, out
        assert "所选期间和部门没有数据。" in html
        assert 'data-chart="by_position"' not in html and 'data-chart="funnel"' not in html


def test_a_correlation_is_never_shown_without_its_n(sqlite_settings):
    n = 34
    scores = pd.DataFrame({"candidate_id": list(range(n)) + list(range(12)),
                           "position_code": ["P-SA-001"] * n + ["P-MF-001"] * 12,
                           "competency": ["communication"] * n + ["hands_on"] * 12,
                           "score": [40 + i for i in range(n)] + [50 + i for i in range(12)]})
    ratings = pd.DataFrame({"candidate_id": range(n), "rating": [1 + (i // 7) for i in range(n)]})
    empty = pd.DataFrame()
    facts = Facts(pd.DataFrame(), empty, scores, ratings, empty, empty, {"communication": "沟通能力", "hands_on": "动手能力"})
    section = render._correlations(facts, {})
    assert section.columns == ["岗位", "胜任力", "样本量 n", "相关系数 ρ", "95% 置信区间"]
    rows = {r[0]: r for r in section.rows}
    assert rows["P-SA-001"][1:3] == ["沟通能力", n] and rows["P-SA-001"][3] != "样本不足"
    assert rows["P-MF-001"][1:5] == ["动手能力", 12, "样本不足", "—"]
    [scatter] = section.charts  # only the finding gets a plot, and it carries its n
    assert f'data-n="{n}"' in scatter and f"n={n}" in scatter


def test_excel_cells_that_would_be_formulas_are_neutralised(tmp_path):
    doc = render.Report("报表", "范围", Viewer("hr_admin", "hr"), pd.Timestamp.now(tz="UTC").to_pydatetime(),
                        [render.Section("x", "表", "说明", ["a", "b"],
                                        [["=HYPERLINK(\"http://x\")", "+1"], ["-2", "@SUM(A1)"], ["正常", -3]])])
    render.to_excel(doc, tmp_path / "r.xlsx")
    ws = load_workbook(tmp_path / "r.xlsx")["表"]
    cells = [c.value for row in ws.iter_rows(min_row=2) for c in row]
    assert cells == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "正常", -3]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_report_dates_are_days_in_the_group_time_zone(sqlite_settings):
    seed(sqlite_settings)
    doc = render.build(sqlite_settings, Viewer("hr_admin", "hr"), date(2026, 11, 9), date(2026, 11, 15))
    assert doc.figures["volume"] == 5 and "2026-11-09 至 2026-11-15" in doc.scope
