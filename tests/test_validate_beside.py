"""Validation beside the validate step (hiresync.pipeline.validate_beside): a second process prepares
two of every three batches of a large run for the raw suite, and what the step stages and reports is
exactly what it stages validating alone, with payloads the hub already holds and when the helper
stops early."""

from __future__ import annotations

import dataclasses

from hiresync.hub.models import Watermark
from hiresync.hub.store import transaction
from hiresync.pipeline import validate_beside
from hiresync.pipeline.context import RunContext
from hiresync.pipeline.extract import extract
from hiresync.pipeline.runner import run_source
from hiresync.pipeline.validate import validate

BATCH = 50  # the aiview fixture's 315 results (300, 15 of them again, rescored) in 7 batches


def _validated_twice(settings, monkeypatch, run_id: str):
    """Extract once, then validate with a helper and again alone: the two stagings (known batches,
    failures and summary) and the two step results."""
    helped = dataclasses.replace(settings, batch_size=BATCH, validate_beside_rows=100, map_beside_rows=0,
                                 relay_beside_rows=0)
    ctx = RunContext.open("aiview", run_id, helped)
    extract(ctx)
    started, by_step = [], []
    real = validate_beside.ValidateBeside.__enter__
    monkeypatch.setattr(validate_beside.ValidateBeside, "__enter__", lambda self: started.append(1) or real(self))
    real_prepare = validate_beside.prepare_batch
    monkeypatch.setattr("hiresync.pipeline.validate.prepare_batch", lambda *a: by_step.append(1) or real_prepare(*a))
    with_helper = validate(ctx), list(ctx.staging.read_batches("known")), ctx.staging.read_json("validation")
    assert started == [1]
    steps_own = len(by_step)
    ctx.settings = dataclasses.replace(helped, validate_beside_rows=0)
    alone = validate(ctx), list(ctx.staging.read_batches("known")), ctx.staging.read_json("validation")
    assert started == [1] and len(by_step) == steps_own + 7  # no helper the second time: every batch
    return with_helper, alone, steps_own


def _same(with_helper, alone):
    (result, known, validation), (result_alone, known_alone, validation_alone) = with_helper, alone
    assert len(known) == 7
    assert result == result_alone and known == known_alone
    assert validation["failures"] == validation_alone["failures"]
    for part in ("known", "failed_at_ingest", "rows", "failed_rows"):
        assert validation["summary"].get(part) == validation_alone["summary"].get(part)


def test_the_helper_prepares_two_of_every_three_batches_and_the_step_stages_the_same(
        sqlite_settings, aiview, monkeypatch):
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(BATCH))
    with_helper, alone, steps_own = _validated_twice(sqlite_settings, monkeypatch, "aiview__cli__validate_beside")
    assert steps_own == 3  # batches 0, 3 and 6; the helper prepared the other four
    _same(with_helper, alone)
    result, _, validation = with_helper
    assert result["rows"] == 300 + len(aiview.rescored) and result["failed_rows"] > 0 and validation["failures"]


def test_payloads_the_hub_holds_are_set_aside_by_the_helper_as_by_the_step(sqlite_settings, aiview, monkeypatch):
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(BATCH))
    run_source("aiview", dataclasses.replace(sqlite_settings, batch_size=BATCH))
    with transaction(sqlite_settings.hub_url) as s:  # rewind: the whole window again, every payload known
        s.delete(s.get(Watermark, "aiview"))
    with_helper, alone, steps_own = _validated_twice(sqlite_settings, monkeypatch,
                                                     "aiview__cli__validate_beside_known")
    assert steps_own == 3
    _same(with_helper, alone)
    result, known, _ = with_helper
    assert result["known"] == sum(len(k) for k in known) >= 300 - len(aiview.defects)


def test_a_helper_that_stops_early_leaves_its_batches_to_the_step(sqlite_settings, aiview, monkeypatch):
    """The helper refuses (it sees another mapping file than the step's, as after an edit between the
    two reading it) and ends; the step prepares every batch itself."""
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", str(BATCH))
    real = validate_beside.ValidateBeside.__init__

    def init(self, *args):
        real(self, *args)
        self._args = self._args[:7] + ("0" * 12,) + self._args[8:]  # a fingerprint the file does not have
    monkeypatch.setattr(validate_beside.ValidateBeside, "__init__", init)
    with_helper, alone, steps_own = _validated_twice(sqlite_settings, monkeypatch,
                                                     "aiview__cli__validate_beside_refused")
    assert steps_own == 7  # every batch by the step
    _same(with_helper, alone)
