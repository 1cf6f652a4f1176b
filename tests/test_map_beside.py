"""Mapping beside the map step (hiresync.pipeline.map_beside): a second process maps two of every three
batches of a large run, and what the step stages is exactly what it stages mapping alone, also when
the helper stops early."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from hiresync.hub.models import InterviewResult, Quarantine
from hiresync.hub.store import transaction
from hiresync.pipeline import batches_beside, map_beside
from hiresync.pipeline.context import RunContext
from hiresync.pipeline.extract import extract
from hiresync.pipeline.runner import run_source
from hiresync.pipeline.transform import map_records
from hiresync.pipeline.validate import validate

BATCH = 50  # the aiview fixture's 300 results (and its defects) in 7 batches


def _mapped_twice(settings, monkeypatch, stop_helper=None):
    """Extract and validate once, then map with a helper and again alone: the two stagings (mapped
    batches with their content hashes, and the problems) and the two step results."""
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(BATCH))
    helped = dataclasses.replace(settings, batch_size=BATCH, map_beside_rows=100, relay_beside_rows=0)
    ctx = RunContext.open("aiview", "aiview__cli__beside", helped)
    extract(ctx)
    validate(ctx)
    if stop_helper:
        stop_helper(monkeypatch)
    with_helper = map_records(ctx), list(ctx.staging.read_batches("mapped")), ctx.staging.read_json("map_problems")
    ctx.settings = dataclasses.replace(helped, map_beside_rows=0)
    alone = map_records(ctx), list(ctx.staging.read_batches("mapped")), ctx.staging.read_json("map_problems")
    return with_helper, alone


def test_the_helper_maps_two_of_every_three_batches_and_the_step_stages_the_same(sqlite_settings, aiview, monkeypatch):
    (result, mapped, problems), (result_alone, mapped_alone, problems_alone) = _mapped_twice(sqlite_settings, monkeypatch)
    assert len(mapped) == 7 and result["helper_batches"] == 4  # batches 1, 2, 4, 5
    assert "helper_batches" not in result_alone
    assert mapped == mapped_alone and problems == problems_alone
    assert sum(len(b) for b in mapped) == result["mapped"] > 0
    assert {k: v for k, v in result.items() if k != "helper_batches"} == result_alone


def test_a_helper_that_stops_early_leaves_its_batches_to_the_step(sqlite_settings, aiview, monkeypatch):
    """The helper refuses to map (here: it sees another mapping file than the step's, as after an
    edit between the two reading it) and ends; the step maps every batch itself."""
    def another_file(monkeypatch):
        real = map_beside.MapBeside.__init__

        def init(self, *args):
            real(self, *args)
            self._args = self._args[:5] + ("0" * 12,) + self._args[6:]  # a fingerprint the file does not have
        monkeypatch.setattr(map_beside.MapBeside, "__init__", init)

    (result, mapped, problems), (result_alone, mapped_alone, problems_alone) = _mapped_twice(
        sqlite_settings, monkeypatch, stop_helper=another_file)
    assert "helper_batches" not in result
    assert mapped == mapped_alone and problems == problems_alone and result == result_alone


def test_a_large_run_with_both_helpers_loads_what_it_pulled_exactly_once(sqlite_settings, aiview, monkeypatch):
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(BATCH))
    settings = dataclasses.replace(sqlite_settings, batch_size=BATCH, map_beside_rows=100, relay_beside_rows=100)
    steps = {}
    counts = run_source("aiview", settings, on_step=lambda name, result: steps.setdefault(name, result))
    assert steps["map"]["helper_batches"] == 4
    assert counts["pulled"] == counts["inserted"] + counts["updated"] + counts["unchanged"] + counts["quarantined"]
    with transaction(settings.hub_url) as s:
        loaded = s.scalars(select(InterviewResult.vendor_result_id)).all()
        held = s.scalars(select(Quarantine.vendor_result_id)).all()
    assert len(loaded) == len(set(loaded)) == counts["inserted"] and len(held) == counts["quarantined"] > 0



def test_a_map_step_that_fails_midway_stops_its_helper_at_once(sqlite_settings, aiview, monkeypatch):
    """The step fails while the helper has batches waiting for it (and more on the way): the failure
    comes out at once, and the helper is gone."""
    import time

    import psutil
    import pytest

    from hiresync.contract import canonical_suite

    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(BATCH))
    settings = dataclasses.replace(sqlite_settings, batch_size=BATCH, map_beside_rows=100, relay_beside_rows=0)
    ctx = RunContext.open("aiview", "aiview__cli__fails", settings)
    extract(ctx)
    validate(ctx)
    real, seen = canonical_suite.frame_columns, []

    def fails_at_the_second_batch(*args):
        seen.append(1)
        if len(seen) == 2:
            time.sleep(1)  # the helper maps ahead meanwhile and fills what the step may hold
            raise RuntimeError("the canonical suite failed")
        return real(*args)

    monkeypatch.setattr(canonical_suite, "frame_columns", fails_at_the_second_batch)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="canonical suite failed"):
        map_records(ctx)
    assert time.monotonic() - started < batches_beside.STOP_SECONDS  # not waited out, nor stuck
    assert not [p for p in psutil.Process().children(recursive=True)
                if "map_beside" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE]
