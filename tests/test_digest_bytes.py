"""Digests (payload and content hashes, idempotency keys, blind indexes) are stored as their 32
bytes and read back as hex (hub.models.Digest, migration 0017), on every hub database; a new SQLite
hub has 16 KB pages. Both for the hub's size per stored result (bench/end_to_end.py)."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hiresync.hub.bulk import insert_rows, one_of
from hiresync.hub.models import Candidate, Outbox, RawPayload
from hiresync.hub.store import alembic_config, engine_for, migrate, transaction
from tests.helpers import digest

ID_NUMBER = "110105194912310021"


def _candidate(key: str) -> dict:
    return dict(candidate_key=key, key_version=1, national_id_bidx=digest(key), mobile_bidx=None,
                national_id_masked="110***", national_id_enc="v1:eA==", full_name_enc="v1:eQ==", full_name_masked="王*")


def test_digests_are_stored_as_bytes_and_found_by_their_hex(hub_url):
    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, Candidate.__table__, [_candidate("bulk")])  # COPY / the driver's executemany
        s.add(Candidate(**_candidate("orm")))
    with transaction(hub_url) as s:
        stored = dict(s.execute(text("SELECT candidate_key, national_id_bidx FROM candidates")).all())
        by_index = s.scalars(select(Candidate.candidate_key).where(Candidate.national_id_bidx == digest("orm"))).all()
        by_list = s.scalars(select(Candidate.candidate_key).where(
            one_of(Candidate.national_id_bidx, [digest("bulk"), digest("orm")]))).all()
        read = dict(s.execute(select(Candidate.candidate_key, Candidate.national_id_bidx)).all())
    assert {k: bytes(v) for k, v in stored.items()} == {k: bytes.fromhex(digest(k)) for k in ("bulk", "orm")}
    assert by_index == ["orm"] and sorted(by_list) == ["bulk", "orm"]
    assert read == {"bulk": digest("bulk"), "orm": digest("orm")}


def test_a_value_that_is_not_a_digest_is_refused_without_quoting_it(hub_url):
    """Say a caller passed the resident ID itself where its blind index belongs."""
    with pytest.raises(Exception) as caught, transaction(hub_url) as s:
        s.add(Candidate(**{**_candidate("plain"), "national_id_bidx": ID_NUMBER}))
    assert "not a SHA-256 digest" in str(caught.value) and ID_NUMBER not in str(caught.value)
    with pytest.raises(Exception) as caught, transaction(hub_url) as s:
        s.scalars(select(Candidate).where(Candidate.national_id_bidx == "王小明" + ID_NUMBER)).all()
    assert "not a SHA-256 digest" in str(caught.value) and ID_NUMBER not in str(caught.value)


def test_migration_0017_converts_stored_digests_and_back(blank_database):
    url = blank_database
    with engine_for(url).begin() as conn:
        cfg = alembic_config(url, conn)
        command.upgrade(cfg, "0016")
        conn.execute(text("INSERT INTO raw_payloads (source, vendor_result_id, payload_hash, run_id, received_at) "
                          "VALUES ('s', 'r1', :h, 'run', '2026-01-01 00:00:00')"), {"h": digest("payload")})
        conn.execute(text("INSERT INTO outbox (target, kind, result_version, idempotency_key, raw_payload_id, "
                          "status, attempts, run_id, created_at) SELECT 'ehr', 'upsert', 1, :k, id, 'pending', "
                          "0, 'run', '2026-01-01 00:00:00' FROM raw_payloads"), {"k": digest("key")})
        command.upgrade(cfg, "0017")
        assert bytes(conn.execute(text("SELECT payload_hash FROM raw_payloads")).scalar()) \
            == bytes.fromhex(digest("payload"))
        assert conn.execute(select(RawPayload.payload_hash)).scalar() == digest("payload")
        assert conn.execute(select(Outbox.id).where(Outbox.idempotency_key == digest("key"))).scalar() is not None
        command.downgrade(cfg, "0016")
        assert conn.execute(text("SELECT payload_hash FROM raw_payloads")).scalar() == digest("payload")
        assert conn.execute(text("SELECT idempotency_key FROM outbox")).scalar() == digest("key")
    with engine_for(url).begin() as conn:  # committed: the references held
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE raw_payload_id IS NOT NULL")).scalar() == 1


def test_a_new_sqlite_hub_has_16_kb_pages(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    with engine_for(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 16384
