"""Data Docs: a static HTML site of every run's data-contract results, under var/data_docs/.

Why not GX's own Data Docs: they are rendered from stored GX validation results, and a COMPLETE
result keeps the failing values (resident IDs, phones) in unexpected_index_list; a file data context
is also not safe for concurrent writers. The hub already keeps, per run, a value-free summary of both
suites (runs.validation_summary: per expectation, counts and percentages only), so the site is
rendered from that: safe to open for anyone who may see the run counts, rebuilt whole after each run.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from sqlalchemy import select

from hiresync.hub.models import Run, SourceState
from hiresync.hub.store import transaction
from hiresync.config.settings import Settings
from hiresync.config.sources import load_sources

RUNS_PER_SOURCE = 30
log = logging.getLogger(__name__)

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
.fail{color:#b00020;font-weight:600}.ok{color:#1b5e20}.frozen{background:#fde8e8;padding:.5em;border-left:4px solid #b00020}"""


def docs_dir(settings: Settings) -> Path:
    return settings.var_dir / "data_docs"


def build_data_docs(settings: Settings) -> Path:
    """Render the site; returns the index file. Each page is written to a temp file and renamed."""
    out = docs_dir(settings)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    sections = []
    with transaction(settings.hub_url) as s:
        for name in load_sources(settings):
            state = s.get(SourceState, name)
            runs = s.scalars(select(Run).where(Run.source == name).order_by(Run.started_at.desc())
                             .limit(RUNS_PER_SOURCE)).all()
            for run in runs:
                _write(out / "runs" / f"{_file_id(run.id)}.html", _run_page(run))
            sections.append(_source_section(name, state, runs))
    index = out / "index.html"
    _write(index, _page("HireSync Data Docs", "".join(sections) or "<p>No sources configured.</p>"))
    return index


def build_data_docs_quietly(settings: Settings) -> Path | None:
    """For the end of a CLI run: docs are a report, a failure to write them must not hide the run's outcome."""
    try:
        return build_data_docs(settings)
    except Exception as exc:  # noqa: BLE001 - logged by type only: messages could name paths, never values
        log.warning("Data Docs not rebuilt: %s", type(exc).__name__)
        return None


def _source_section(name: str, state: SourceState | None, runs: list[Run]) -> str:
    head = f"<h2>source {_e(name)}</h2>"
    if state is not None and state.state == "frozen":
        head += f'<p class="frozen">FROZEN since run {_e(state.run_id)}: {_e(state.reason)}</p>'
    rows = "".join(
        f"<tr><td><a href=\"runs/{_file_id(r.id)}.html\">{_e(r.id)}</a></td><td>{_e(r.status)}</td>"
        f"<td>{r.pulled}</td><td>{r.quarantined}</td><td>{_failed_expectations(r.validation_summary)}</td>"
        f"<td>{_e((r.validation_summary or {}).get('drift', {}).get('reason', ''))}</td></tr>"
        for r in runs)
    return head + ("<table><tr><th>run</th><th>status</th><th>pulled</th><th>quarantined</th>"
                   f"<th>failed expectations</th><th>drift</th></tr>{rows}</table>" if runs else "<p>No runs yet.</p>")


def _run_page(run: Run) -> str:
    summary = run.validation_summary or {}
    body = (f"<p><a href=\"../index.html\">all runs</a></p><p>source {_e(run.source)}, status {_e(run.status)}, "
            f"pulled {run.pulled}, quarantined {run.quarantined}, mapping {_e(run.mapping_version)}</p>")
    if run.error:
        body += f'<p class="fail">{_e(run.error)}</p>'
    if not summary:
        body += "<p>No validation results stored for this run.</p>"
    for title, part in (("Raw vendor batch", summary), ("Canonical records", summary.get("canonical") or {})):
        if part.get("expectations") is None:
            continue
        body += f"<h2>{title}: {part.get('failed_rows', 0)} of {part.get('rows', 0)} rows failed</h2>"
        body += _expectation_table(part["expectations"])
    if summary.get("drift"):
        d = summary["drift"]
        body += f"<h2>Schema drift</h2><p class=\"{'fail' if d.get('drifted') else 'ok'}\">" \
                f"{'DRIFT: ' + _e(d.get('reason')) if d.get('drifted') else 'no drift'} " \
                f"({d.get('failed_rows')} of {d.get('rows')} rows failed)</p>"
    return _page(f"Run {run.id}", body)


def _expectation_table(results: list[dict]) -> str:
    rows = "".join(
        f"<tr><td>{_e(r['field'])}</td><td>{_e(r['rule'])}</td><td>{_e(r['expectation'])}</td>"
        f"<td class=\"{'ok' if r['success'] else 'fail'}\">{'passed' if r['success'] else 'FAILED'}</td>"
        f"<td>{r.get('element_count')}</td><td>{r.get('unexpected_count')}</td>"
        f"<td>{_pct(r.get('unexpected_percent'))}</td></tr>"
        for r in results)
    return ("<table><tr><th>field</th><th>rule</th><th>expectation</th><th>result</th><th>rows</th>"
            f"<th>unexpected</th><th>unexpected %</th></tr>{rows}</table>")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}%"


def _failed_expectations(summary: dict | None) -> int:
    summary = summary or {}
    parts = [summary.get("expectations") or [], (summary.get("canonical") or {}).get("expectations") or []]
    return sum(1 for part in parts for r in part if not r.get("success"))


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>")


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _file_id(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
