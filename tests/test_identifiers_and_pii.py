"""Identifier rules and the personal-data primitives."""

from __future__ import annotations

import pytest

from hiresync.privacy import identifiers
from hiresync.privacy import pii
from hiresync.errors import KeyMaterialError


def make_id(first17: str) -> str:
    return first17 + identifiers.id_check_char(first17)


def test_resident_id_checksum():
    assert identifiers.national_id_problem("11010519491231002X") is None  # the GB 11643 sample
    assert identifiers.national_id_problem("110101199003071234") == "ID_CHECKSUM"  # widely copied, wrong
    assert identifiers.national_id_problem("11010519491231002") == "ID_FORMAT"
    assert identifiers.national_id_problem(make_id("11010519491331002")) == "ID_BIRTH_DATE"
    assert identifiers.national_id_problem("11010519491231002x") is None  # lower-case x is the same ID
    assert identifiers.national_id_problem("１１０１０５１９４９１２３１００２Ｘ") is None  # full-width digits


@pytest.mark.parametrize("raw,expected", [
    ("13812345678", "+8613812345678"), ("+86 138 1234 5678", "+8613812345678"),
    ("138-1234-5678", "+8613812345678"), ("008613812345678", "+8613812345678"),
    ("12812345678", None), ("1381234567", None), ("021-12345678", None),
])
def test_mobile_normalisation(raw, expected):
    assert identifiers.normalize_mobile(raw) == expected


def test_email_normalisation():
    assert identifiers.normalize_email(" Wang.Fang@163.COM ") == "wang.fang@163.com"
    assert identifiers.normalize_email("not-an-email") is None


@pytest.fixture
def keys(tmp_path):
    pii.Keyring.generate(tmp_path / "k.json")
    return pii.Keyring.load(tmp_path / "k.json")


def test_encryption_round_trip_is_bound_to_its_row(keys):
    token = keys.encrypt("11010519491231002X", "candidates.national_id:abc")
    assert "11010519491231002X" not in token and token.startswith("v1:")
    assert keys.decrypt(token, "candidates.national_id:abc") == "11010519491231002X"
    assert keys.encrypt("same", "c") != keys.encrypt("same", "c")  # fresh nonce each time
    with pytest.raises(KeyMaterialError):
        keys.decrypt(token, "candidates.national_id:other-row")  # copied to another row: refused


def test_blind_index_is_keyed_and_stable(keys, tmp_path):
    pii.Keyring.generate(tmp_path / "other.json")
    other = pii.Keyring.load(tmp_path / "other.json")
    assert keys.blind_index("x") == keys.blind_index("x")
    assert keys.blind_index("x") != other.blind_index("x")


def test_key_file_is_not_overwritten_and_bad_material_is_refused(tmp_path, monkeypatch):
    pii.Keyring.generate(tmp_path / "k.json")
    with pytest.raises(KeyMaterialError):
        pii.Keyring.generate(tmp_path / "k.json")
    monkeypatch.setenv("HIRESYNC_KEYS", '{"active": 1, "keys": {}}')
    with pytest.raises(KeyMaterialError) as err:
        pii.Keyring.load(tmp_path / "k.json")
    assert "active key version 1" in str(err.value)


def test_masks():
    assert pii.mask_national_id("11010519491231002X") == "110105********002X"
    assert pii.mask_mobile("+8613800138000") == "138****8000"
    assert pii.mask_email("zhang.san@example.com") == "z***@example.com"
    assert pii.mask_name("王小明") == "王**"


def test_keyring_from_an_airflow_connection(tmp_path, monkeypatch):
    import json as _json

    pii.Keyring.generate(tmp_path / "k.json")
    material = (tmp_path / "k.json").read_text()
    monkeypatch.setenv("HIRESYNC_KEYS_CONNECTION", "hiresync_keys")
    monkeypatch.setenv("AIRFLOW_CONN_HIRESYNC_KEYS", _json.dumps({"conn_type": "generic", "password": material}))
    keys = pii.Keyring.load(tmp_path / "missing.json")  # the file is not needed
    assert keys.decrypt(pii.Keyring.load(tmp_path / "k.json").encrypt("x", "c"), "c") == "x"
