"""Raw payloads compressed against their source's zstd dictionary (hiresync.privacy.payloads): smaller,
readable wherever a payload is read, and the dictionary holds no candidate's identifying values."""

from __future__ import annotations

import pytest
import zstandard
from sqlalchemy import create_engine, delete, func, select, update

from connectors.targets.ehr_sql import ehr_interview_results
from hiresync import jsonfast
from hiresync.audit.trace import trace
from hiresync.errors import HireSyncError, KeyMaterialError
from hiresync.hub.models import Candidate, Outbox, PayloadDictionary, RawPayload, Watermark
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec
from hiresync.pipeline.runner import run_source
from hiresync.privacy import payloads
from hiresync.privacy.keys import rotate
from hiresync.privacy.payloads import open_payload
from hiresync.privacy.pii import DICTIONARY_PREFIX, Keyring
from hiresync.tools.subject import find_holdings
from tests.helpers import REPO, connect

# The aiview fixture brings 300 results in one batch; a source gets its dictionary at 1,000 payloads.
TRAIN_FROM = 200


def _stored(settings, keys):
    """(raw payload row, its sealed plaintext, its bytes as open_payload reads them) for every payload."""
    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(RawPayload).order_by(RawPayload.id)).all()
        return [(r, keys.decrypt_sealed(r.payload_enc, payloads.context(r.source, r.payload_hash)),
                 open_payload(s, keys, r.source, r.payload_hash, r.payload_enc)) for r in rows]


def test_a_large_first_batch_trains_a_dictionary_that_every_reader_uses(settings, aiview, monkeypatch):
    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    counts = run_source("aiview", settings)
    keys = Keyring.load(settings.key_file)

    with transaction(settings.hub_url) as s:
        [dictionary] = s.scalars(select(PayloadDictionary)).all()
    assert (dictionary.source, dictionary.samples) == ("aiview", counts["pulled"])
    stored = _stored(settings, keys)
    assert len(stored) == counts["pulled"]
    alone = zstandard.ZstdCompressor(level=1)
    for raw, sealed, payload in stored:
        assert sealed.startswith(DICTIONARY_PREFIX)
        assert zstandard.get_frame_parameters(sealed[len(DICTIONARY_PREFIX):]).dict_id == dictionary.dict_id
        assert jsonfast.loads(payload)["result_id"] == raw.vendor_result_id
    # Against the dictionary a payload takes well under half the bytes it takes compressed alone.
    assert sum(len(sealed) for _, sealed, _ in stored) < 0.5 * sum(len(alone.compress(p)) for *_, p in stored)

    # The relay rendered every body from them: the EHR holds every loaded result.
    with transaction(settings.hub_url) as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status != "sent")) == 0
    with create_engine(settings.ehr_url).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ehr_interview_results)) == counts["inserted"]
    # Trace shows the vendor's values, read from the stored payload.
    key = stored[0][0].vendor_result_id
    [record] = trace(settings, keys, f"aiview:{key}")["records"]
    assert any("vendor_value" in line for line in record["mapping"]["fields"])


def test_the_dictionary_holds_no_candidates_identifying_values(sqlite_settings, aiview, monkeypatch):
    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    run_source("aiview", sqlite_settings)
    keys = Keyring.load(sqlite_settings.key_file)
    with transaction(sqlite_settings.hub_url) as s:
        content = s.scalar(select(PayloadDictionary.content))
        people = [{f: keys.decrypt(getattr(c, f"{f}_enc"), f"candidates.{f}:{c.candidate_key}")
                   for f in ("full_name", "national_id", "mobile", "email") if getattr(c, f"{f}_enc")}
                  for c in s.scalars(select(Candidate))]
    assert len(people) > 200 and content
    text = content.decode("utf-8", errors="ignore")
    for person in people:  # names are Chinese: looked for as UTF-8 bytes, not only as decoded text
        for value in person.values():
            assert value.encode() not in content and value not in text
    # Only what the mapping reads as interview content is learnt from; anything else is blanked,
    # fields the mapping does not read included. The payload itself is left as it was.
    spec = MappingSpec.load(REPO / "mappings" / "aiview.yaml")
    sample = {"result_id": "AV-1", "wechat": "wx_wang", "candidate": {"name": "王小明", "id_card": "110101199003071234",
                                                                       "mobile": 13800000000, "email": "wang@example.com"},
              "job": {"title": "大客户经理"}, "interview": {"video": {"url": "https://v.example/x/AbC123"}},
              "evaluation": {"comment": "表达清楚", "total_score": 80, "passed": True,
                             "dimensions": [{"code": "logic", "comment": "有条理", "assessor": "李四"}]}}
    shared = spec.interview_content(sample)
    assert shared["candidate"] == {"name": "", "id_card": "", "mobile": 0, "email": ""}
    assert (shared["result_id"], shared["wechat"]) == ("", "")
    assert shared["interview"]["video"]["url"] == "https://v.example/"  # a link: its host alone
    assert shared["job"] == {"title": "大客户经理"}
    assert shared["evaluation"] == {"comment": "表达清楚", "total_score": 80, "passed": True,
                                    "dimensions": [{"code": "logic", "comment": "有条理", "assessor": ""}]}
    assert sample["candidate"]["name"] == "王小明" and sample["wechat"] == "wx_wang"


def test_small_syncs_train_one_once_the_hub_holds_enough_and_older_payloads_still_read(sqlite_settings, monkeypatch):
    from simulators.aiview import AIViewSimulator

    monkeypatch.setattr(payloads, "TRAIN_FROM", 500)
    with AIViewSimulator(count=300, seed=5) as sim:  # a first sync: too few to train on
        connect(monkeypatch, sim)
        run_source("aiview", sqlite_settings)
    keys = Keyring.load(sqlite_settings.key_file)
    before = _stored(sqlite_settings, keys)
    assert before and not any(sealed.startswith(DICTIONARY_PREFIX) for _, sealed, _ in before)

    with transaction(sqlite_settings.hub_url) as s:  # pull everything again, as from a new vendor account
        s.execute(delete(Watermark))
    with AIViewSimulator(count=300, seed=6) as sim:  # too few as well, but with the 300 the hub holds
        connect(monkeypatch, sim)
        run_source("aiview", sqlite_settings)
    with transaction(sqlite_settings.hub_url) as s:
        assert s.scalar(select(PayloadDictionary.samples)) > 500
    after = _stored(sqlite_settings, keys)
    assert {r.id: p for r, _, p in after if r.id in {b.id for b, *_ in before}} == {r.id: p for r, _, p in before}
    assert sum(sealed.startswith(DICTIONARY_PREFIX) for _, sealed, _ in after) == len(after) - len(before) > 250
    # A data subject's holdings are found and read in both kinds (the search opens every payload).
    first, last = before[0], after[-1]
    assert last[1].startswith(DICTIONARY_PREFIX)
    with transaction(sqlite_settings.hub_url) as s:
        for raw, _, payload in (first, last):
            held = find_holdings(s, sqlite_settings, keys, jsonfast.loads(payload)["candidate"]["id_card"])
            assert held.raw_payloads[raw.id][1] == jsonfast.loads(payload)


def test_a_key_rotation_keeps_dictionary_compressed_payloads_as_they_are(settings, aiview, monkeypatch):
    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    run_source("aiview", settings)
    before = _stored(settings, Keyring.load(settings.key_file))
    Keyring.add_version(settings.key_file)
    keys = Keyring.load(settings.key_file)

    rotate(settings, keys, batch_size=100)

    after = _stored(settings, keys)
    assert all(r.payload_enc.startswith("v2:") for r, *_ in after)
    assert [(r.id, sealed, p) for r, sealed, p in after] == [(r.id, sealed, p) for r, sealed, p in before]


def test_a_payload_whose_dictionary_is_missing_is_refused_by_name(sqlite_settings, aiview, monkeypatch):
    monkeypatch.setattr(payloads, "TRAIN_FROM", TRAIN_FROM)
    run_source("aiview", sqlite_settings)
    keys = Keyring.load(sqlite_settings.key_file)
    with transaction(sqlite_settings.hub_url) as s:
        raw = s.scalars(select(RawPayload).limit(1)).one()
        name = jsonfast.loads(open_payload(s, keys, raw.source, raw.payload_hash, raw.payload_enc))["candidate"]["name"]
        dict_id = s.scalar(select(PayloadDictionary.dict_id))
        s.execute(update(PayloadDictionary).values(dict_id=dict_id + 1))  # as if it were lost
    payloads._dictionaries.clear()  # this process has it cached

    with transaction(sqlite_settings.hub_url) as s, pytest.raises(HireSyncError) as err:
        open_payload(s, keys, raw.source, raw.payload_hash, raw.payload_enc)
    assert f"names compression dictionary {dict_id}" in str(err.value) and "'aiview'" in str(err.value)
    assert name not in str(err.value)
    # The keyring alone cannot read it, and says what can.
    with pytest.raises(KeyMaterialError, match="open_payload"):
        keys.decrypt_bytes(raw.payload_enc, payloads.context(raw.source, raw.payload_hash))
