"""Key rotation while syncs keep running: nothing unreadable, nobody matched twice."""

from __future__ import annotations

from sqlalchemy import func, select
from typer.testing import CliRunner

from hiresync.delivery.render import bodies
from hiresync.cli import app
from hiresync.hub.models import Candidate, InterviewResult, Outbox, RawPayload
from hiresync.hub.store import transaction
from hiresync.privacy.keys import rotate, status
from hiresync.privacy.pii import Keyring
from hiresync.pipeline.runner import run_source


def candidates(settings) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(Candidate))


def test_rotation_rekeys_everything_and_old_tokens_are_gone(settings, aiview):
    run_source("aiview", settings)
    Keyring.add_version(settings.key_file)
    keys = Keyring.load(settings.key_file)
    assert keys.active == 2

    done = rotate(settings, keys, batch_size=50)

    assert done["candidates"] == candidates(settings) > 0
    left = status(settings, keys)
    assert left["candidates"] == {"2": candidates(settings)}
    assert all(left[t]["older"] == 0 for t in ("raw_payloads", "interview_results", "outbox"))
    with transaction(settings.hub_url) as s:  # every value still decrypts, with version 2
        for c in s.scalars(select(Candidate)):
            assert c.national_id_enc.startswith("v2:")
            nid = keys.decrypt(c.national_id_enc, f"candidates.national_id:{c.candidate_key}")
            assert c.national_id_bidx == keys.blind_index(nid, "national_id", 2)
            for field in ("mobile", "email"):  # each field under its own key, also after a rotation
                token = getattr(c, f"{field}_enc")
                value = keys.decrypt(token, f"candidates.{field}:{c.candidate_key}") if token else None
                assert getattr(c, f"{field}_bidx") == (keys.blind_index(value, field, 2) if value else None)
            assert c.bidx_scheme == 2
        for r in s.scalars(select(RawPayload).limit(20)):
            assert '"result_id"' in keys.decrypt(r.payload_enc, f"raw_payloads:{r.source}:{r.payload_hash}")
        for o in s.scalars(select(Outbox).where(Outbox.payload_enc.is_not(None)).limit(20)):
            keys.decrypt(o.payload_enc, f"outbox:{o.target}:{o.idempotency_key}")
        references = s.scalars(select(Outbox).where(Outbox.payload_enc.is_(None)).limit(20)).all()
        assert references and all("candidate" in body for body in bodies(s, keys, references).values())
        for r in s.scalars(select(InterviewResult).where(InterviewResult.video_url_enc.is_not(None)).limit(20)):
            assert keys.decrypt(r.video_url_enc, f"interview_results.video_url:{r.vendor}:{r.vendor_result_id}").startswith("https://")


def test_a_sync_in_the_middle_of_a_rotation_matches_every_candidate_once(settings, aiview):
    run_source("aiview", settings)
    before = candidates(settings)
    Keyring.add_version(settings.key_file)
    rotate(settings, Keyring.load(settings.key_file), batch_size=40, max_batches=2)  # 80 re-keyed, the rest not
    with transaction(settings.hub_url) as s:
        versions = dict(s.execute(select(Candidate.key_version, func.count()).group_by(Candidate.key_version)).all())
    assert versions[2] == 80 and versions[1] == before - 80

    # Re-scored results of the same people arrive: their candidates must be found, half of them
    # only under the old key's index.
    aiview.rescore(30)
    run_source("aiview", settings)

    assert candidates(settings) == before  # matched under the old or the new index, never created again


def test_keys_rotate_command(sqlite_settings, aiview):
    run_source("aiview", sqlite_settings)
    result = CliRunner().invoke(app, ["keys", "rotate", "--batch-size", "100"])
    assert result.exit_code == 0, result.output
    assert "version 2 added" in result.output and "rotation complete" in result.output
    assert Keyring.load(sqlite_settings.key_file).active == 2


def test_a_wrong_key_is_refused_before_anything_is_pulled_or_written(settings, aiview):
    import pytest

    from hiresync.errors import KeyMaterialError

    run_source("aiview", settings)
    before = candidates(settings)
    settings.key_file.unlink()
    Keyring.generate(settings.key_file)  # somebody's other key file
    aiview.reset_requests()

    with pytest.raises(KeyMaterialError) as err:
        run_source("aiview", settings)

    assert "does not belong to this hub" in str(err.value)
    assert sum(aiview.requests.values()) == 0 and candidates(settings) == before


def test_a_pseudonym_is_stable_across_rotation_and_differs_per_purpose(tmp_path):
    from hiresync.privacy.pii import Keyring

    key_file = tmp_path / "keys.json"
    Keyring.generate(key_file)
    before = Keyring.load(key_file)
    Keyring.add_version(key_file)
    after = Keyring.load(key_file)
    assert after.active == 2
    assert before.pseudonym("drop_file_name", "复试_x.csv") == after.pseudonym("drop_file_name", "复试_x.csv")
    assert after.pseudonym("drop_file_name", "复试_x.csv") != after.pseudonym("other", "复试_x.csv")
    assert after.pseudonym("drop_file_name", "复试_x.csv") != after.blind_index("复试_x.csv", "email", 1)[:16]
