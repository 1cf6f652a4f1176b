"""Data-subject requests that hold up (issue 14): an erasure that erases, an export that exports."""

from __future__ import annotations

from sqlalchemy import func, select
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import Candidate, IdentityReview
from hiresync.hub.store import transaction
from tests.test_identity import payload, sync

NID = "11010519491231002X"


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_erase_succeeds_for_a_person_with_an_identity_review(settings):
    sync(settings, "r1", [payload("A-1")])
    sync(settings, "r2", [payload("A-2", name="李雷")])  # same resident ID, another name: a review
    assert count(settings, IdentityReview) == 1

    result = CliRunner().invoke(app, ["subject", "erase", "--national-id", NID, "--operator", "dpo", "--yes"])

    assert result.exit_code == 0, result.output
    assert count(settings, Candidate) == 0 and count(settings, IdentityReview) == 0
    assert NID not in result.output and "李雷" not in result.output
