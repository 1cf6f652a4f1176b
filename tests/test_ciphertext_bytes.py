"""Encrypted columns store the token's bytes (hub.models.Ciphertext, migration 0016), on every hub
database, through the ORM and through the load's bulk path alike."""

from __future__ import annotations

import base64

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hiresync.hub.bulk import insert_rows
from hiresync.hub.models import Candidate, RawPayload
from hiresync.hub.store import alembic_config, engine_for, transaction
from hiresync.privacy.pii import Keyring
from tests.helpers import digest

NAME = "王小明"


@pytest.fixture
def keys(tmp_path) -> Keyring:
    Keyring.generate(tmp_path / "keys.json")
    return Keyring.load(tmp_path / "keys.json")


def _candidate(keys: Keyring, key: str) -> dict:
    return dict(candidate_key=key, key_version=1, national_id_bidx=digest(key), national_id_masked="110***",
                national_id_enc=keys.encrypt("110105194912310021", f"candidates.national_id:{key}"),
                full_name_enc=keys.encrypt(NAME, f"candidates.full_name:{key}"), full_name_masked="王**")


def test_tokens_are_stored_as_their_bytes_and_read_back_as_tokens(hub_url, keys):
    bulk, orm = _candidate(keys, "bulk"), _candidate(keys, "orm")
    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, Candidate.__table__, [bulk])  # COPY / the driver's executemany
        s.add(Candidate(**orm))
    with transaction(hub_url) as s:
        got = {c.candidate_key: c for c in s.scalars(select(Candidate))}
        stored = dict(s.execute(text("SELECT candidate_key, full_name_enc FROM candidates")).all())
    for key, row in (("bulk", bulk), ("orm", orm)):
        assert got[key].full_name_enc == row["full_name_enc"]
        assert keys.decrypt(got[key].full_name_enc, f"candidates.full_name:{key}") == NAME
        head, _, body = row["full_name_enc"].partition(":")
        assert bytes(stored[key]) == head.encode() + b":" + base64.b64decode(body)  # no base64 on disk
        assert len(bytes(stored[key])) < len(row["full_name_enc"])


def test_a_value_that_is_not_a_token_is_refused_without_quoting_it(hub_url):
    with pytest.raises(Exception) as caught, transaction(hub_url) as s:
        s.add(Candidate(candidate_key="plain", key_version=1, national_id_bidx=digest("plain"), national_id_masked="110***",
                        national_id_enc="v1:eA==", full_name_enc=NAME, full_name_masked="王**"))
    assert "not an encryption token" in str(caught.value) and NAME not in str(caught.value)
    with transaction(hub_url) as s:
        assert s.scalars(select(Candidate)).all() == []


def test_migration_0016_converts_stored_tokens_and_back(blank_database):
    url = blank_database
    token = "v7:" + base64.b64encode(bytes(range(256)) * 3).decode()  # every byte value, ':' included
    with engine_for(url).begin() as conn:
        cfg = alembic_config(url, conn)
        command.upgrade(cfg, "0015")
        conn.execute(text("INSERT INTO raw_payloads (source, vendor_result_id, payload_hash, payload_enc, run_id, "
                          "received_at) VALUES ('s', :r, 'h', :t, 'run', '2026-01-01 00:00:00')"),
                     [{"r": "kept", "t": token}, {"r": "purged", "t": None}])
        # A row that points at a payload: SQLite cannot recreate a table others reference (a
        # first version of this migration failed there on every real hub).
        conn.execute(text("INSERT INTO outbox (target, kind, result_version, idempotency_key, raw_payload_id, "
                          "status, attempts, run_id, created_at) SELECT 'ehr', 'upsert', 1, 'k', id, 'pending', "
                          "0, 'run', '2026-01-01 00:00:00' FROM raw_payloads WHERE vendor_result_id = 'kept'"))
        command.upgrade(cfg, "0016")
        assert bytes(conn.execute(text("SELECT payload_enc FROM raw_payloads WHERE vendor_result_id = 'kept'"))
                     .scalar()) == b"v7:" + bytes(range(256)) * 3
        assert conn.execute(select(RawPayload.payload_enc).order_by(RawPayload.vendor_result_id)).scalars().all() \
            == [token, None]
        command.downgrade(cfg, "0015")
        assert conn.execute(text("SELECT payload_enc FROM raw_payloads WHERE vendor_result_id = 'kept'")).scalar() \
            == token
    with engine_for(url).begin() as conn:  # committed: the references held
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE raw_payload_id IS NOT NULL")).scalar() == 1


def test_a_token_left_as_text_on_sqlite_still_reads(tmp_path, keys):
    """A process still running the code from before migration 0016 (a webhook receiver) writes the
    token as text; SQLite keeps it so, and it reads back as the same token."""
    from hiresync.hub.store import migrate

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    token = keys.encrypt("原文", "inbox:kuaipin:d-1")
    with engine_for(url).begin() as conn:
        conn.execute(text("INSERT INTO inbox (source, delivery_id, payload_enc, status, received_at) "
                          "VALUES ('kuaipin', 'd-1', :t, 'new', '2026-12-06 00:00:00')"), {"t": token})
    from hiresync.hub.models import InboxDelivery

    with transaction(url) as s:
        stored = s.scalar(select(InboxDelivery.payload_enc))
    assert stored == token and keys.decrypt(stored, "inbox:kuaipin:d-1") == "原文"
