"""The HR report: built from the analytics for one viewer (the role matrix), written as one
self-contained HTML file (inline SVG charts, inline CSS, no script, nothing fetched) and an Excel
workbook with the same tables. Every label HR reads is Chinese."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select

from hiresync.privacy.cells import neutralize_cell  # one rule for every spreadsheet HireSync writes
from hiresync.config.files import private_dir, private_file
from hiresync.config.settings import Settings
from hiresync.hub.models import Candidate
from hiresync.hub.store import transaction
from hiresync.report import analytics as a
from hiresync.report import charts
from hiresync.report.access import Viewer
from hiresync.report.facts import Facts, load_facts

NO_DATA = "所选期间和部门没有数据。"
STATUS_LABELS = {"passed": "通过", "failed": "未通过", "pending_review": "待定", "incomplete": "未完成"}
STAGE_LABELS = {"reinterview_requested": "已申请复试", "reinterviewed": "已复试", "offer": "已发录用通知",
                "hired": "已入职", "rejected": "已拒绝"}
MAX_SCATTERS = 6


@dataclass
class Section:
    key: str
    title: str
    explain: str                     # what it means for HR
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    note: str | None = None          # shown instead of charts and table when there is no data

    @property
    def empty(self) -> bool:
        return not self.rows


@dataclass
class Report:
    title: str
    scope: str
    viewer: Viewer
    generated_at: datetime
    sections: list[Section]
    figures: dict = field(default_factory=dict)  # key numbers (for tests, the DAG's message)


def _pct(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.1%}"


def _days(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.1f}"


def build(settings: Settings, viewer: Viewer, start: date | None = None, end: date | None = None,
          department: str | None = None) -> Report:
    department = viewer.department_scope(department)
    facts = load_facts(settings, start, end, department)
    period = f"{start or '最早'} 至 {end or '最新'}"
    scope = f"期间 {period}；部门 {department or '全部'}；查看者 {viewer.user}（{_role(viewer)}）"
    sections: list[Section] = []
    figures: dict = {}
    if viewer.sees_results:
        sections += _result_sections(settings, facts, viewer, figures, department)
    if viewer.role in ("hr", "it"):
        sections.append(_health(facts, figures))
    return Report("AI 面试 HR 报表", scope, viewer, datetime.now(timezone.utc), sections, figures)


def _role(v: Viewer) -> str:
    return {"hr": "HR", "department": f"业务部门 {v.department}", "it": "IT 运维"}[v.role]


def _result_sections(settings: Settings, f: Facts, viewer: Viewer, figures: dict, department: str | None) -> list[Section]:
    res, ev = f.results, f.events
    out = []
    total = len(res)
    passed = int(res["status"].eq("passed").sum()) if total else 0
    figures.update(volume=total, passed=passed, pass_rate=passed / total if total else None)
    out.append(Section("overview", "总览", "所选范围内 AI 面试的总量与通过率。",
                       ["AI 面试量", "通过人数", "AI 通过率"], [[total, passed, _pct(figures["pass_rate"])]] if total else []))

    def rates(key: str, by: str, title: str, label: str, explain: str) -> Section:
        if not total:
            return Section(key, title, explain)
        t = a.pass_rates(res, by, settings.timezone)
        names = t["position_name"].fillna("") if by == "position_code" else None
        labels = [f"{c} {n}".strip() if names is not None else str(c)
                  for c, n in zip(t[by], names if names is not None else t[by])]
        figures[key] = {lab: {"volume": int(v), "pass_rate": float(r)} for lab, v, r in zip(labels, t["volume"], t["pass_rate"])}
        rows = [[lab, int(v), int(p), _pct(r)] for lab, v, p, r in zip(labels, t["volume"], t["passed"], t["pass_rate"])]
        chart = charts.bars([(lab, float(r)) for lab, r in zip(labels, t["pass_rate"])], name=key, max_value=1,
                            percent=True)
        return Section(key, title, explain, [label, "面试量", "通过人数", "AI 通过率"], rows, [chart])

    out.append(rates("by_position", "position_code", "各岗位通过率", "岗位",
                     "通过率过高或过低提示题目难度或门槛需要调整（例如某研发岗位通过率 60% 说明难度适中）。"))
    out.append(rates("by_week", "week", "每周趋势", "周",
                     "每周 AI 面试量与通过率：招聘节奏与题目变更的影响。"))
    out.append(rates("by_vendor", "vendor", "各供应商", "供应商", "不同 AI 面试供应商的面试量与通过率。"))
    if department is None:
        out.append(rates("by_department", "department", "各部门", "部门", "各业务部门的面试量与通过率。"))

    fun = a.funnel(res, ev) if total else None
    if fun is not None and fun["count"].iloc[0]:
        figures["funnel"] = {r.label: int(r.count) for r in fun.itertuples()}
        rows = [[r.label, int(r.count), _pct(r.conversion), _days(r.median_days)] for r in fun.itertuples()]
        out.append(Section("funnel", "招聘漏斗", "AI 面试通过 → 复试 → 录用通知 → 入职：每一步的转化率和两步之间的天数中位数；"
                           "转化低或天数长的环节就是流程的瓶颈。", ["阶段", "人数", "较上一步转化率", "距上一步天数（中位数）"], rows,
                           [charts.bars([(r.label, float(r.count)) for r in fun.itertuples()], name="funnel", unit=" 人",
                                        colour=charts.COLOURS[1])]))
    else:
        out.append(Section("funnel", "招聘漏斗", "AI 面试通过 → 复试 → 录用通知 → 入职。"))

    if total:
        o = a.decision_vs_outcome(res, ev)
        figures.update(hired_share=o.hired_share, overturned_share=o.overturned_share)
        rows = [["AI 通过后最终入职", o.ai_passed, o.ai_passed_hired, _pct(o.hired_share)],
                ["AI 未通过、经人工复核后被推翻", o.ai_failed_reviewed, o.ai_failed_overturned, _pct(o.overturned_share)]]
        items = [(r[0], v) for r, v in zip(rows, (o.hired_share, o.overturned_share)) if v is not None]
        out.append(Section("decision", "AI 决策与最终结果", "AI 面试预测准确性：AI 通过的人中最终入职的比例；AI 未通过但经人工复核的人中"
                           "被推翻（继续复试或录用）的比例。推翻比例高说明 AI 标准可能过严。",
                           ["指标", "基数", "人数", "比例"], rows,
                           [charts.bars(items, name="decision", max_value=1, percent=True, colour=charts.COLOURS[2])]
                           if items else []))
    else:
        out.append(Section("decision", "AI 决策与最终结果", "AI 面试预测准确性。"))

    out.append(_correlations(f, figures))
    out.append(_overrides(settings, f, viewer))
    for s in out:
        if s.empty and s.note is None:
            s.note = NO_DATA
    return out


def _correlations(f: Facts, figures: dict) -> Section:
    explain = ("各岗位每项胜任力得分与入职后绩效的 Spearman 等级相关系数（附样本量 n 和 95% 置信区间）。"
               f"样本少于 {a.MIN_N} 人时显示“{a.INSUFFICIENT}”，不作为结论；散点图只画置信区间不含 0 的组合。"
               "同时比较很多组合时，偶尔会有个别组合仅因偶然而显得相关，请结合业务判断。")
    corr = a.competency_correlations(f.scores, f.ratings)
    if not corr:
        return Section("correlation", "胜任力与绩效", explain, note="尚无可与面试得分匹配的绩效数据。")
    corr.sort(key=lambda c: (c.rho is None, -(abs(c.rho) if c.rho is not None else 0), c.position_code))
    rows, scatters = [], []
    for c in corr:
        name = f.competency_names.get(c.competency, c.competency)
        ci = "—" if c.rho is None else f"[{c.ci_low:.2f}, {c.ci_high:.2f}]"
        rows.append([c.position_code, name, c.n, c.verdict, ci])
        # a plot only for a finding: n >= MIN_N and an interval that excludes 0
        if c.rho is not None and (c.ci_low > 0 or c.ci_high < 0) and len(scatters) < MAX_SCATTERS:
            pts = a.correlation_pairs(f.scores, f.ratings, c.position_code, c.competency)
            scatters.append(charts.scatter(pts, name=f"scatter:{c.position_code}:{c.competency}",
                                           x_label=f"{name} 得分", y_label="绩效",
                                           caption=f"{c.position_code} ρ={c.rho:.2f} n={c.n}"))
    figures["correlation"] = {f"{c.position_code}/{c.competency}": {"n": c.n, "rho": c.rho} for c in corr}
    return Section("correlation", "胜任力与绩效", explain, ["岗位", "胜任力", "样本量 n", "相关系数 ρ", "95% 置信区间"],
                   rows, scatters)


def _overrides(settings: Settings, f: Facts, viewer: Viewer) -> Section:
    """AI-failed candidates a person let go on: the cases HR reviews the AI's standard with."""
    explain = "AI 未通过、但经人工复核继续推进的候选人，用于复查 AI 标准。" + (
        "" if viewer.sees_names else "（姓名已脱敏）")
    res, ev = f.results, f.events
    if res.empty:
        return Section("overrides", "人工推翻名单", explain)
    failed = res[res["status"].eq("failed")].set_index("result_id")
    later = ev[ev["stage"].isin(a.OVERTURN_STAGES) & ev["result_id"].isin(failed.index)]
    if later.empty:
        return Section("overrides", "人工推翻名单", explain, note="没有被人工推翻的 AI 结论。")
    last = later.sort_values("occurred_at").groupby("result_id").tail(1).set_index("result_id")
    names = _names(settings, list(failed.loc[last.index, "candidate_id"]), viewer.sees_names)
    rows = [[names.get(int(failed.loc[rid, "candidate_id"]), "—"), failed.loc[rid, "position_code"],
             failed.loc[rid, "department"], STATUS_LABELS["failed"], STAGE_LABELS.get(e.stage, e.stage)]
            for rid, e in last.iterrows()]
    return Section("overrides", "人工推翻名单", explain, ["候选人", "岗位", "部门", "AI 结论", "后续阶段"], rows)


def _names(settings: Settings, candidate_ids: list[int], plain: bool) -> dict[int, str]:
    with transaction(settings.hub_url) as s:
        rows = s.execute(select(Candidate.id, Candidate.candidate_key, Candidate.full_name_enc, Candidate.full_name_masked)
                         .where(Candidate.id.in_(candidate_ids))).all()
    if not plain:
        return {r.id: r.full_name_masked for r in rows}
    from hiresync.privacy.keys import hub_keys

    keys = hub_keys(settings)
    return {r.id: keys.decrypt(r.full_name_enc, f"candidates.full_name:{r.candidate_key}") for r in rows}


def _health(f: Facts, figures: dict) -> Section:
    explain = "各数据源的隔离比例（未能入库、等待处理的记录）和投递状态；隔离比例升高说明供应商的数据格式可能变了。"
    h = a.data_health(f.runs, f.outbox)
    if h.empty:
        return Section("health", "数据健康", explain)
    figures["health"] = {r.source: {"quarantine_share": r.quarantine_share, "pending": int(r.pending),
                                    "sent": int(r.sent), "dead": int(r.dead)} for r in h.itertuples()}
    rows = [[r.source, int(r.pulled), int(r.quarantined), _pct(r.quarantine_share), int(r.pending), int(r.sent),
             int(r.dead)] for r in h.itertuples()]
    chart = charts.bars([(r.source, float(r.quarantine_share or 0)) for r in h.itertuples()], name="health",
                        max_value=max([float(r.quarantine_share or 0) for r in h.itertuples()] + [0.05]),
                        percent=True, colour=charts.COLOURS[4])
    return Section("health", "数据健康", explain, ["数据源", "拉取条数", "隔离条数", "隔离比例", "待投递", "已投递", "投递失败"],
                   rows, [chart])


# -- output ---------------------------------------------------------------------------------------
CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px;color:#222;max-width:980px}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.scope{color:#555;font-size:13px} .explain{color:#444;font-size:13px} .empty{color:#a05a00;font-style:italic}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f5f8} .charts{display:flex;flex-wrap:wrap;gap:12px}
"""


def to_html(report: Report) -> str:
    zone = report.generated_at
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
             f"<title>{escape(report.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{escape(report.title)}</h1>",
             f'<p class="scope">{escape(report.scope)}；生成时间 {zone:%Y-%m-%d %H:%M} UTC</p>']
    for s in report.sections:
        parts.append(f'<section id="{escape(s.key)}" data-section="{escape(s.key)}"><h2>{escape(s.title)}</h2>')
        parts.append(f'<p class="explain">{escape(s.explain)}</p>')
        if s.empty:
            parts.append(f'<p class="empty" data-empty="1">{escape(s.note or NO_DATA)}</p></section>')
            continue
        if s.charts:
            parts.append('<div class="charts">' + "".join(f'<figure class="chart">{c}</figure>' for c in s.charts)
                         + "</div>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in s.columns) + "</tr></thead><tbody>")
        for row in s.rows:
            parts.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</tbody></table></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_excel(report: Report, path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    info = wb.active
    info.title = "说明"
    info.append([neutralize_cell(report.title)])
    info.append([neutralize_cell(report.scope)])
    for s in report.sections:
        info.append([neutralize_cell(s.title), neutralize_cell(s.explain if not s.empty else (s.note or NO_DATA))])
        if s.empty:
            continue
        ws = wb.create_sheet(s.title[:31])
        ws.append([neutralize_cell(c) for c in s.columns])
        for row in s.rows:
            ws.append([neutralize_cell(v) for v in row])
    wb.save(path)


def write(report: Report, out_dir: Path, stem: str = "hr-report") -> tuple[Path, Path]:
    """The HTML and the workbook, readable by their owner only (HR's copy holds candidates' names)."""
    private_dir(out_dir)
    html_path, xlsx_path = private_file(out_dir / f"{stem}.html"), private_file(out_dir / f"{stem}.xlsx")
    html_path.write_text(to_html(report), encoding="utf-8")
    to_excel(report, xlsx_path)
    return html_path, xlsx_path


def local_stamp(settings: Settings) -> str:
    return datetime.now(ZoneInfo(settings.timezone)).strftime("%Y%m%d-%H%M%S")
