"""`hiresync source compact-payloads` (hiresync.tools.compact): payloads stored before their source had
a compression dictionary are compressed against it, and every reader gets the same bytes as before."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from hiresync.audit.trace import trace
from hiresync.cli import app
from hiresync.hub.models import Candidate, PayloadDictionary, RawPayload
from hiresync.hub.store import transaction
from hiresync.pipeline.lock import SourceBusy, acquire, holder, release
from hiresync.pipeline.runner import run_source
from hiresync.privacy import payloads
from hiresync.privacy.payloads import open_payload
from hiresync.privacy.pii import DICTIONARY_PREFIX, Keyring
from hiresync.tools.compact import compact_payloads

# The aiview fixture brings 300 results: fewer than a dictionary needs (1,000), so a sync stores them
# compressed alone; with the threshold lowered, compaction trains one from them.
TRAIN_FROM = 200


def _stored(settings, keys) -> dict[int, tuple[bytes | None, bytes | None]]:
    """raw payload id -> (its sealed plaintext, its bytes as open_payload reads them); None when purged."""
    with transaction(settings.hub_url) as s:
        return {r.id: (keys.decrypt_sealed(r.payload_enc, payloads.context(r.source, r.payload_hash)),
                       open_payload(s, keys, r.source, r.payload_hash, r.payload_enc)) if r.payload_enc else (None, None)
                for r in s.scalars(select(RawPayload).order_by(RawPayload.id))}


def test_compaction_puts_older_payloads_against_the_dictionary_and_readers_get_the_same_bytes(
        settings, aiview, monkeypatch):
    counts = run_source("aiview", settings)
    keys = Keyring.load(settings.key_file)
    with transaction(settings.hub_url) as s:
        assert s.scalar(select(PayloadDictionary.id)) is None
        purged = s.scalar(select(RawPayload.id).order_by(RawPayload.id.desc()).limit(1))
        s.execute(update(RawPayload).where(RawPayload.id == purged).values(payload_enc=None))  # as retention does
    before = _stored(settings, keys)
    assert len(before) == counts["pulled"] and not any(sealed.startswith(DICTIONARY_PREFIX)
                                                       for sealed, _ in before.values() if sealed)

    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    done = compact_payloads(settings, keys, "aiview", batch_size=64)  # several batches, each its own transaction

    assert (done.dictionary, done.compacted, done.already) == (True, counts["pulled"] - 1, 0)
    assert done.bytes_after < 0.6 * done.bytes_before
    after = _stored(settings, keys)
    assert after[purged] == (None, None)  # purged stays purged
    for raw_id, (sealed, payload) in after.items():
        if raw_id != purged:
            assert sealed.startswith(DICTIONARY_PREFIX)
            assert payload == before[raw_id][1]  # the very bytes the vendor sent
    assert sum(len(sealed) for sealed, _ in after.values() if sealed) == done.bytes_after
    with transaction(settings.hub_url) as s:
        assert s.scalar(select(PayloadDictionary.source)) == "aiview"
        key = s.scalar(select(RawPayload.vendor_result_id).where(RawPayload.id != purged).limit(1))
    [record] = trace(settings, keys, f"aiview:{key}")["records"][:1]
    assert any("vendor_value" in line for line in record["mapping"]["fields"])

    again = compact_payloads(settings, keys, "aiview")
    assert (again.compacted, again.already) == (0, counts["pulled"] - 1)
    # The source's lock was given back: the next sync runs, and finds everything it pulls known.
    assert run_source("aiview", settings)["inserted"] == 0


def test_compaction_stops_while_a_sync_of_the_source_runs(sqlite_settings, aiview, monkeypatch):
    run_source("aiview", sqlite_settings)
    keys = Keyring.load(sqlite_settings.key_file)
    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    before = _stored(sqlite_settings, keys)
    acquire(sqlite_settings, "aiview", "aiview__cli__running", holder(airflow=False))
    try:
        with pytest.raises(SourceBusy, match="'aiview' is already syncing"):
            compact_payloads(sqlite_settings, keys, "aiview")
    finally:
        release(sqlite_settings, "aiview", "aiview__cli__running")
    assert _stored(sqlite_settings, keys) == before
    with transaction(sqlite_settings.hub_url) as s:
        assert s.scalar(select(PayloadDictionary.id)) is None  # not trained either


def test_the_command_prints_counts_and_sizes_and_no_personal_data(sqlite_settings, aiview, monkeypatch):
    run_source("aiview", sqlite_settings)
    runner = CliRunner()
    early = runner.invoke(app, ["source", "compact-payloads", "aiview"])
    assert early.exit_code == 0, early.output
    assert "no compression dictionary yet" in early.output and "nothing changed" in early.output

    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    result = runner.invoke(app, ["source", "compact-payloads", "aiview"])
    assert result.exit_code == 0, result.output
    assert "payloads compressed against its dictionary" in result.output and "VACUUM" in result.output
    keys = Keyring.load(sqlite_settings.key_file)
    with transaction(sqlite_settings.hub_url) as s:
        people = [keys.decrypt(getattr(c, f"{f}_enc"), f"candidates.{f}:{c.candidate_key}")
                  for c in s.scalars(select(Candidate)) for f in ("full_name", "national_id", "mobile", "email")
                  if getattr(c, f"{f}_enc")]
    assert len(people) > 800
    assert not [value for value in people if value in result.output]
    assert runner.invoke(app, ["source", "compact-payloads", "nosuch"]).exit_code == 2


def test_a_payload_purged_while_its_batch_is_compacted_stays_purged(settings, aiview, monkeypatch):
    """Retention or an erasure purging a payload between the batch's read and its write: the write
    leaves it purged (it is written only while it holds a payload), and the rest of the batch goes on."""
    from hiresync.tools import compact

    run_source("aiview", settings)
    keys = Keyring.load(settings.key_file)
    with transaction(settings.hub_url) as s:
        ids = s.scalars(select(RawPayload.id).order_by(RawPayload.id)).all()
    victim = ids[10]
    real = compact.reseal

    def purge_meanwhile(*args):
        if not purge_meanwhile.done:  # in its own transaction, committed before the batch writes
            with transaction(settings.hub_url) as s:
                s.execute(update(RawPayload).where(RawPayload.id == victim).values(payload_enc=None))
            purge_meanwhile.done = True
        return real(*args)

    purge_meanwhile.done = False
    monkeypatch.setattr(compact, "reseal", purge_meanwhile)
    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    done = compact_payloads(settings, keys, "aiview")
    after = _stored(settings, keys)
    assert after[victim] == (None, None)
    assert all(sealed.startswith(DICTIONARY_PREFIX) for raw_id, (sealed, _) in after.items() if raw_id != victim)
    assert done.compacted == len(ids) - 1
