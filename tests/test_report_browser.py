"""The HTML report in a real browser (Playwright + Debian's Chromium): every chart renders, the
numbers drawn and tabled equal the hub's, a department sees only its positions, and it all works
offline (every request other than the file itself is refused). Screenshots go to var/screenshots/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.report import analytics as a
from hiresync.report.facts import load_facts
from tests.helpers import REPO
from tests.test_report import NAMES, seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
SHOTS = REPO / "var" / "screenshots"
runner = CliRunner()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def open_report(browser, tmp_path, user: str, shot: str):
    result = runner.invoke(app, ["report", "--user", user, "--out", str(tmp_path / user)])
    assert result.exit_code == 0, result.output
    html = Path(re.search(r"report: (\S+)", result.output).group(1))
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    fetched = []

    def offline(route):  # the report must need nothing but itself
        if route.request.url == html.as_uri():
            route.continue_()
        else:
            fetched.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto(html.as_uri())
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / shot), full_page=True)
    return page, fetched


def rendered(page) -> dict[str, list]:
    """chart name -> [(label, value, drawn width or radius)] as the browser laid them out."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('svg.chart-svg')].map(svg => {
        const box = svg.getBoundingClientRect();
        const marks = [...svg.querySelectorAll('.mark')].map(m => [m.dataset.label || null, m.dataset.value,
                                                                  m.getBBox().width]);
        return [svg.dataset.chart, {w: box.width, h: box.height, marks}];
    }))""")


def test_every_chart_renders_with_the_hub_s_numbers(sqlite_settings, browser, tmp_path):
    seed(sqlite_settings)
    page, fetched = open_report(browser, tmp_path, "hr_admin", "report-hr.png")
    charts = rendered(page)
    assert fetched == []
    assert {"by_position", "by_week", "by_vendor", "by_department", "funnel", "decision", "health"} <= set(charts)
    for name, c in charts.items():
        assert c["w"] > 100 and c["h"] > 10 and c["marks"], name
        assert any(width > 0 for _, _, width in c["marks"]), name

    facts = load_facts(sqlite_settings)
    fun = a.funnel(facts.results, facts.events)
    assert [(lab, float(v)) for lab, v, _ in charts["funnel"]["marks"]] == list(zip(fun["label"], map(float, fun["count"])))
    rates = a.pass_rates(facts.results, "vendor")
    assert {lab: float(v) for lab, v, _ in charts["by_vendor"]["marks"]} == dict(zip(rates["vendor"], rates["pass_rate"]))
    # the bars are drawn to scale: 75 % is three times as long as 25 %
    widths = {lab: w for lab, _, w in charts["by_vendor"]["marks"]}
    assert widths["aiview"] == pytest.approx(3 * widths["zhiping"], rel=0.01)
    # the tables say the same as the charts
    funnel_cells = page.locator("section#funnel tbody tr td:nth-child(2)").all_inner_texts()
    assert funnel_cells == [str(n) for n in fun["count"]]
    assert "张伟强" in page.content()


def test_a_department_sees_its_positions_only_in_the_browser(sqlite_settings, browser, tmp_path):
    seed(sqlite_settings)
    page, _ = open_report(browser, tmp_path, "sales_lead", "report-sales.png")
    text = page.inner_text("body")
    assert "P-SA-001" in text and "P-RD-001" not in text and "研发中心" not in text
    assert not any(name in text for name in NAMES.values())
    assert "health" not in rendered(page)


def test_it_sees_operations_only(sqlite_settings, browser, tmp_path):
    seed(sqlite_settings)
    page, _ = open_report(browser, tmp_path, "it_ops", "report-it.png")
    assert list(rendered(page)) == ["health"]
    text = page.inner_text("body")
    assert "P-SA-001" not in text and not any(name in text for name in NAMES.values())
