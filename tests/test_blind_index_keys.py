"""Blind indexes under a key of their own per field (issue 14, finding 12), and the one-off re-index
of a hub whose candidates were indexed the old way (one key per key version for every field)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import Candidate, IdentityReview, InterviewResult
from hiresync.hub.store import engine_for, migrate, transaction
from hiresync.privacy import identifiers, keys as keys_mod
from tests.helpers import digest
from hiresync.privacy.keys import hub_keys, reindex_blind_indexes, upgrade_blind_indexes
from hiresync.privacy.pii import Keyring
from tests.test_identity import payload, sync

FIELDS = ("national_id", "mobile", "email")


def rid(first17: str) -> str:
    return first17 + identifiers.id_check_char(first17)


# -- the formulas, written out here so that the code is checked against them, not against itself ----
def idx_keys(settings) -> dict[int, bytes]:
    doc = json.loads(settings.key_file.read_text())
    return {int(v): base64.b64decode(k["idx"]) for v, k in doc["keys"].items()}


def legacy_index(idx: bytes, value: str) -> str:
    return hmac.new(idx, value.encode(), hashlib.sha256).hexdigest()


def field_index(idx: bytes, field: str, value: str) -> str:
    key = hmac.new(idx, b"hiresync-bidx|" + field.encode(), hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def make_legacy(settings) -> int:
    """Turn the hub's candidates into what a hub from before migration 0014 holds."""
    keys, idx = Keyring.load(settings.key_file), idx_keys(settings)
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(Candidate)).all()
        for c in rows:
            for field in FIELDS:
                token = getattr(c, f"{field}_enc")
                if token:
                    value = keys.decrypt(token, f"candidates.{field}:{c.candidate_key}")
                    setattr(c, f"{field}_bidx", legacy_index(idx[c.key_version], value))
            c.bidx_scheme = 1
        return len(rows)


def assert_per_field(settings, version: int | None = None) -> int:
    """Every candidate indexed per field under its key version (or `version`); returns how many."""
    keys, idx = Keyring.load(settings.key_file), idx_keys(settings)
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(Candidate)).all()
        for c in rows:
            assert c.bidx_scheme == 2
            assert version is None or c.key_version == version
            for field in FIELDS:
                token = getattr(c, f"{field}_enc")
                value = keys.decrypt(token, f"candidates.{field}:{c.candidate_key}") if token else None
                assert getattr(c, f"{field}_bidx") == (field_index(idx[c.key_version], field, value) if value else None)
    return len(rows)


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def on_old_scheme(settings) -> int:
    return count(settings, Candidate, Candidate.bidx_scheme == 1)


NID_A = "11010519491231002X"
NID_B = rid("44030519880808123")


def two_people(result_prefix: str, updated: str = "2026-11-03T01:45:00Z") -> list[dict]:
    return [payload(f"{result_prefix}-A", NID_A, "王芳", "13800138000", "wang.fang@163.com", updated),
            payload(f"{result_prefix}-B", NID_B, "李雷", "13900139000", "li.lei@163.com", updated)]


# -- (a) the derivation -------------------------------------------------------------------------------
def test_each_field_has_its_own_key_and_none_is_the_old_shared_one(tmp_path):
    Keyring.generate(tmp_path / "k.json")
    keys = Keyring.load(tmp_path / "k.json")
    idx = base64.b64decode(json.loads((tmp_path / "k.json").read_text())["keys"]["1"]["idx"])
    same = "13800138000"  # one string, indexed as three fields

    by_field = {f: keys.blind_index(same, f) for f in FIELDS}

    assert len(set(by_field.values())) == 3
    assert legacy_index(idx, same) not in by_field.values()
    assert by_field == {f: field_index(idx, f, same) for f in FIELDS}
    assert keys.blind_index(same, "mobile", 1) == by_field["mobile"]  # the active version is 1
    assert keys.blind_indexes(same, "mobile") == [by_field["mobile"]]  # no old form unless the hub needs it
    keys.match_legacy_blind_indexes = True
    assert keys.blind_indexes(same, "mobile") == [by_field["mobile"], legacy_index(idx, same)]
    with pytest.raises(ValueError, match="full_name"):
        keys.blind_index(same, "full_name")
    with pytest.raises(ValueError, match="national_id, mobile, email"):
        keys.blind_indexes(same, "phone")


# -- the migration ------------------------------------------------------------------------------------
def test_migration_0014_marks_existing_candidates_as_indexed_the_old_way(tmp_path):
    from alembic import command

    from hiresync.hub.store import alembic_config

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    with engine_for(url).begin() as conn:
        cfg = alembic_config(url, conn)
        command.upgrade(cfg, "0013")
        conn.execute(text(
            "INSERT INTO candidates (candidate_key, key_version, full_name_enc, full_name_masked, national_id_enc, "
            "national_id_bidx, national_id_masked, created_at, updated_at) VALUES "
            "('k1', 1, 'x', 'x', 'x', '" + digest("old-index") + "', 'x', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    migrate(url)
    with transaction(url) as s:
        assert s.scalar(select(Candidate.bidx_scheme).where(Candidate.candidate_key == "k1")) == 1
        s.add(Candidate(candidate_key="k2", key_version=1, full_name_enc="v1:eA==", full_name_masked="x",
                        national_id_enc="v1:eA==", national_id_bidx=digest("new-index"), national_id_masked="x"))
    with transaction(url) as s:  # what this code writes is on the per-field scheme
        assert s.scalar(select(Candidate.bidx_scheme).where(Candidate.candidate_key == "k2")) == 2


# -- (b) an upgraded hub --------------------------------------------------------------------------------
def test_an_upgraded_hub_is_reindexed_once_and_returning_candidates_stay_one_person(settings, caplog):
    sync(settings, "r1", two_people("R1"))
    assert make_legacy(settings) == 2 and on_old_scheme(settings) == 2
    with transaction(settings.hub_url) as s:
        ids = dict(s.execute(select(Candidate.national_id_masked, Candidate.id)).all())

    caplog.set_level(logging.INFO, logger="hiresync.privacy.keys")
    keys = hub_keys(settings)  # what the next sync starts with

    assert on_old_scheme(settings) == 0 and assert_per_field(settings) == 2
    assert keys.match_legacy_blind_indexes is False
    lines = [r.getMessage() for r in caplog.records if "re-indexed" in r.getMessage()]
    assert lines == ["blind indexes: 2 candidates re-indexed with per-field keys; the hub is fully on per-field keys"]
    assert "王" not in lines[0] and NID_A not in lines[0]

    sync(settings, "r2", two_people("R2", "2026-11-04T01:45:00Z"))  # both come back with new results

    assert count(settings, Candidate) == 2 and count(settings, IdentityReview) == 0
    with transaction(settings.hub_url) as s:
        assert dict(s.execute(select(Candidate.national_id_masked, Candidate.id)).all()) == ids
        assert sorted(s.scalars(select(InterviewResult.candidate_id).where(
            InterviewResult.vendor_result_id.like("R2-%")))) == sorted(ids.values())

    caplog.clear()
    assert upgrade_blind_indexes(settings, keys) == 0  # once: nothing more to do, nothing logged
    assert not [r for r in caplog.records if "re-indexed" in r.getMessage()]


def test_an_interrupted_reindex_still_matches_everyone_and_finishes_later(settings, monkeypatch, tmp_path):
    sync(settings, "r1", two_people("R1"))
    make_legacy(settings)
    # One batch of one row, then the process dies: one candidate is done, the other is not.
    assert reindex_blind_indexes(settings, Keyring.load(settings.key_file), batch_size=1, max_batches=1) == 1
    assert on_old_scheme(settings) == 1
    with transaction(settings.hub_url) as s:
        legacy = s.scalars(select(Candidate).where(Candidate.bidx_scheme == 1)).one()
        legacy_nid = Keyring.load(settings.key_file).decrypt(legacy.national_id_enc,
                                                            f"candidates.national_id:{legacy.candidate_key}")
    # ... and the following syncs cannot finish it either (another process holds the rows, say).
    real = keys_mod.reindex_blind_indexes
    monkeypatch.setattr(keys_mod, "reindex_blind_indexes", lambda settings, keys: 0)
    keys = hub_keys(settings)
    assert keys.match_legacy_blind_indexes is True

    sync(settings, "r2", two_people("R2", "2026-11-04T01:45:00Z"))
    assert count(settings, Candidate) == 2 and count(settings, IdentityReview) == 0  # nobody created twice
    # A new resident ID with the phone and e-mail of the person still on the old index: found by those.
    other = payload("R3-X", rid("31010119850214456"), "赵六",
                    *(("13800138000", "wang.fang@163.com") if legacy_nid == NID_A else ("13900139000", "li.lei@163.com")))
    counts = sync(settings, "r3", [other])
    assert counts["quarantined"] == 1 and count(settings, IdentityReview, IdentityReview.kind == "ID_MISMATCH") == 1
    # The subject tools find them too.
    out = tmp_path / "export.json"
    result = CliRunner().invoke(app, ["subject", "export", "--national-id", legacy_nid, "--out", str(out),
                                      "--operator", "dpo"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["candidate"]["national_id"] == legacy_nid
    assert on_old_scheme(settings) == 1

    monkeypatch.setattr(keys_mod, "reindex_blind_indexes", real)
    assert hub_keys(settings).match_legacy_blind_indexes is False
    assert on_old_scheme(settings) == 0 and assert_per_field(settings) == 2
    sync(settings, "r4", two_people("R4", "2026-11-05T01:45:00Z"))
    assert count(settings, Candidate) == 2

    result = CliRunner().invoke(app, ["subject", "erase", "--national-id", legacy_nid, "--operator", "dpo", "--yes"])
    assert result.exit_code == 0, result.output
    assert count(settings, Candidate) == 1


def test_two_processes_reindexing_at_once_do_every_row_once(settings, monkeypatch):
    people = [payload(f"P-{i}", rid(f"11010519900101{i:03d}"), "张三", f"1380013{i:04d}", f"p{i}@163.com")
              for i in range(12)]
    sync(settings, "r1", people)
    assert make_legacy(settings) == 12
    monkeypatch.setattr(keys_mod, "REINDEX_BATCH", 2)
    start, done, errors = threading.Barrier(2), [], []

    def worker():
        try:
            start.wait()
            done.append(upgrade_blind_indexes(settings, Keyring.load(settings.key_file)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert not errors and len(done) == 2 and sum(done) == 12
    assert on_old_scheme(settings) == 0 and assert_per_field(settings) == 12


# -- (c) rotation ----------------------------------------------------------------------------------------
def test_keys_rotate_on_an_upgraded_hub_indexes_every_field_under_the_new_version(settings):
    sync(settings, "r1", two_people("R1"))
    make_legacy(settings)

    result = CliRunner().invoke(app, ["keys", "rotate", "--batch-size", "1"])

    assert result.exit_code == 0, result.output
    assert assert_per_field(settings, version=2) == 2
    sync(settings, "r2", two_people("R2", "2026-11-04T01:45:00Z"))
    assert count(settings, Candidate) == 2


def test_rotate_itself_reindexes_rows_on_the_old_scheme(settings):
    from hiresync.privacy.keys import rotate

    sync(settings, "r1", two_people("R1"))
    make_legacy(settings)
    Keyring.add_version(settings.key_file)

    done = rotate(settings, Keyring.load(settings.key_file), batch_size=1)  # without hub_keys' re-index first

    assert done["candidates"] == 2 and assert_per_field(settings, version=2) == 2
