"""Per-source sync status for data engineers: no personal data, only ids, counts and times."""

from __future__ import annotations

from sqlalchemy import func, select

from hiresync.contract.data_docs import docs_dir
from hiresync.errors import HireSyncError
from hiresync.hub.models import DimensionScore, InterviewResult, Outbox, Quarantine, Run, Watermark
from hiresync.mapping.competency import unmapped
from hiresync.mapping.spec import MappingSpec
from hiresync.hub.store import transaction
from hiresync.config.settings import Settings, safe_url
from hiresync.config.sources import load_sources
from hiresync.monitor.sync_status import sync_status
from hiresync.privacy.pii import mask_text


def status(settings: Settings) -> dict:
    """One document, one state per source: `sources.<name>.state` is the sync state of
    hiresync.monitor.sync_status (frozen and paused included), beside its last run, watermark and
    quarantine; `targets.<name>` likewise; `issues` lists every open issue."""
    sources = load_sources(settings)
    sync = sync_status(settings)
    out = {"hub": safe_url(settings.hub_url), "ehr": safe_url(settings.ehr_url),
           "lineage": str(settings.lineage_file), "data_docs": _data_docs(settings), "sources": {}}
    with transaction(settings.hub_url) as s:
        for name in sources:
            last = s.scalars(select(Run).where(Run.source == name).order_by(Run.started_at.desc()).limit(1)).first()
            mark = s.get(Watermark, name)
            quarantine = dict(s.execute(select(Quarantine.reason_code, func.count()).where(
                Quarantine.source == name, Quarantine.status == "open").group_by(Quarantine.reason_code)).all())
            out["sources"][name] = {
                **sync["sources"][name],  # state, reason, dead_letters, issues
                "last_run": summary_of(last) if last else None,
                "watermark": mark.cursor_value.isoformat() if mark else None,
                "quarantine_open": sum(quarantine.values()),
                "quarantine_by_reason": quarantine,
                "unmapped_dimensions": _unmapped_dimensions(s, sources[name].mapping),
            }
        out["outbox_pending"] = dict(s.execute(select(Outbox.target, func.count()).where(
            Outbox.status == "pending").group_by(Outbox.target)).all())
    out["targets"], out["issues"] = sync["targets"], sync["issues"]
    return out


def _unmapped_dimensions(s, mapping_file) -> list[str]:
    """Vendor dimension codes in the hub that the source's mapping maps onto no competency."""
    try:
        mapping = MappingSpec.load(mapping_file)
    except HireSyncError:
        return []  # a broken mapping is reported by the sync itself
    dims = s.execute(select(DimensionScore.code, DimensionScore.name).join(
        InterviewResult, InterviewResult.id == DimensionScore.result_id).where(
        InterviewResult.vendor == mapping.vendor).distinct()).all()
    return unmapped(mapping, dims)


def _data_docs(settings: Settings) -> str | None:
    index = docs_dir(settings) / "index.html"
    return str(index) if index.exists() else None


def summary_of(run: Run) -> dict:
    return {
        "run_id": run.id, "source": run.source, "status": run.status,
        "pulled": run.pulled, "inserted": run.inserted, "updated": run.updated, "unchanged": run.unchanged,
        "quarantined": run.quarantined, "delivered": run.delivered,
        "pulled_since": run.pulled_since.isoformat() if run.pulled_since else None,
        "watermark_after": run.watermark_after.isoformat() if run.watermark_after else None,
        "mapping_version": run.mapping_version, "error": mask_text(run.error) if run.error else None,
        # A run is loaded only once all its batches are (hiresync.pipeline.load); one that got past
        # load stays "loaded" or "success" even if delivery failed after.
        "loaded": run.status in ("loaded", "success"),
        # A load that stopped part-way: the rows of the batches it committed (a retry goes on after them).
        "rows_loaded": (run.load_progress or {}).get("rows", 0),
        "failed_step": run.error.split(":", 1)[0] if run.status == "failed" and run.error else None,
    }
