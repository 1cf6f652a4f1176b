"""Keys per purpose (issue 14, finding 12): a recipient's hashed values are keyed per recipient and per
field and survive a key rotation; a recipient can get a pseudonymous candidate key of its own, also in
the erase requests it receives."""

from __future__ import annotations

import pytest

from hiresync.errors import ConfigError
from hiresync.privacy.pii import Keyring
from hiresync.privacy.recipients import RecipientPolicy, load_policy

PAYLOAD = {"candidate": {"candidate_key": "0b6f6c1e-2f7a-4c55-9b1e-3f1f3a7f9e01", "full_name": "王芳",
                         "national_id": "11010519491231002X", "mobile": "+8613800138000", "email": "w@163.com"},
           "result": {"result_key": "aiview:AV-1", "video_url": "https://v/x", "report_url": "https://r/x"}}
ALL_HASHED = {"full_name": "hashed", "national_id": "hashed", "mobile": "hashed", "email": "hashed",
              "video_url": "dropped", "report_url": "dropped"}


@pytest.fixture
def keyrings(tmp_path):
    key_file = tmp_path / "keys.json"
    Keyring.generate(key_file)
    before = Keyring.load(key_file)
    Keyring.add_version(key_file)
    return before, Keyring.load(key_file)


def test_hashed_values_survive_rotation_and_differ_per_recipient_and_field(keyrings):
    before, after = keyrings
    a = RecipientPolicy("cloud_a", ALL_HASHED)
    b = RecipientPolicy("cloud_b", ALL_HASHED)
    assert a.apply(PAYLOAD, before)["candidate"] == a.apply(PAYLOAD, after)["candidate"]  # rotation: same
    assert a.apply(PAYLOAD, after)["candidate"]["national_id"] != b.apply(PAYLOAD, after)["candidate"]["national_id"]
    same_value = {**PAYLOAD, "candidate": {**PAYLOAD["candidate"], "mobile": "x", "email": "x"}}
    shaped = a.apply(same_value, after)["candidate"]
    assert shaped["mobile"] != shaped["email"]  # one key per field: equal values do not join across fields


def test_a_recipient_gets_its_own_stable_candidate_key_also_in_erase_requests(keyrings):
    before, after = keyrings
    a = RecipientPolicy("cloud_a", ALL_HASHED, candidate_key="pseudonym")
    b = RecipientPolicy("cloud_b", ALL_HASHED, candidate_key="pseudonym")
    ck = PAYLOAD["candidate"]["candidate_key"]
    mine = a.apply(PAYLOAD, after)["candidate"]["candidate_key"]
    assert mine != ck and mine == a.apply(PAYLOAD, before)["candidate"]["candidate_key"]
    assert mine != b.apply(PAYLOAD, after)["candidate"]["candidate_key"]  # recipients cannot join on it
    assert len(mine) <= 36  # fits where a candidate key goes
    erase = {"candidate_key": ck, "result_keys": ["aiview:AV-1"]}
    assert a.apply(erase, after)["candidate_key"] == mine  # the erase request names what the recipient holds
    assert RecipientPolicy("ehr", {f: "plain" for f in ALL_HASHED}).apply(PAYLOAD, after) == PAYLOAD


def test_the_policy_file_takes_candidate_key_plain_or_pseudonym(settings, tmp_path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    fields = ", ".join(f"{f}: {a}" for f, a in ALL_HASHED.items())
    from hiresync.config.settings import Settings

    monkeypatch.setenv("HIRESYNC_POLICY", str(policy))
    for choice in ("pseudonym", "hashed"):
        policy.write_text("retention: {raw_payloads_days: 1, video_links_days: 1, quarantine_days: 1}\n"
                          f"recipients:\n  cloud: {{{fields}, candidate_key: {choice}}}\n")
        if choice == "pseudonym":
            assert load_policy(Settings.from_env(), "cloud").candidate_key == "pseudonym"
        else:
            with pytest.raises(ConfigError) as err:
                load_policy(Settings.from_env(), "cloud")
            assert "recipients.cloud.candidate_key" in str(err.value) and "plain, pseudonym" in str(err.value)
