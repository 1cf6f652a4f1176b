"""Identifier rules and the personal-data primitives."""

from __future__ import annotations

import base64
import os
import threading
import zlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hiresync import jsonfast
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


def _plaintext(keys, token: str, context: str) -> bytes:
    """What AES-GCM sealed in `token`: the compression marker and the compressed bytes."""
    raw = base64.b64decode(token.partition(":")[2])
    return AESGCM(keys._versions[1].enc).decrypt(raw[:12], raw[12:], context.encode())


def test_payloads_are_compressed_with_zstd_and_deflated_ones_still_read(keys):
    payload = '{"candidate":{"name":"王芳","id_card":"11010519491231002X"},"comment":"思路清晰，论证层次分明"}' * 20
    token = keys.encrypt(payload, "raw_payloads:aiview:h1", compress=True)
    sealed = _plaintext(keys, token, "raw_payloads:aiview:h1")
    assert sealed.startswith(b"\x00s") and len(sealed) < len(payload.encode()) / 4
    assert keys.decrypt(token, "raw_payloads:aiview:h1") == payload
    # Bytes in, bytes out (a staged batch is never decoded to text and encoded back): the same value.
    raw = keys.encrypt(payload.encode(), "raw_payloads:aiview:h1", compress=True)
    assert keys.decrypt_bytes(raw, "raw_payloads:aiview:h1") == payload.encode()
    assert keys.decrypt(raw, "raw_payloads:aiview:h1") == payload
    # A payload a hub stored before zstd (deflated, under the "\0z" marker) reads as it always did.
    nonce = os.urandom(12)
    old = AESGCM(keys._versions[1].enc).encrypt(nonce, b"\x00z" + zlib.compress(payload.encode(), 1), b"raw_payloads:aiview:h0")
    assert keys.decrypt("v1:" + base64.b64encode(nonce + old).decode(), "raw_payloads:aiview:h0") == payload
    # Several threads at once (the webhook receiver): each gets its own compressor.
    results: list[bool] = []

    def work(n: int) -> None:
        text = f"{payload}{n}"
        results.extend(keys.decrypt(keys.encrypt(text, f"c{n}:{i}", compress=True), f"c{n}:{i}") == text
                       for i in range(200))
    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == [True] * 800


def test_blind_index_is_keyed_and_stable(keys, tmp_path):
    pii.Keyring.generate(tmp_path / "other.json")
    other = pii.Keyring.load(tmp_path / "other.json")
    assert keys.blind_index("x", "email") == keys.blind_index("x", "email")
    assert keys.blind_index("x", "email") != other.blind_index("x", "email")


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


CJK_CASES = [
    # (text a target or vendor may send, plaintext that must go, its mask that should stay)
    ("手机号15631182714与身份证11010519491231002X已注册", ["15631182714", "11010519491231002X"],
     ["156****2714", "110105********002X"]),
    ("候选人+86 15631182714已存在", ["15631182714"], ["156****2714"]),
    ("邮箱wang.fang@163.com已被占用", ["wang.fang@163.com"], ["w***@163.com"]),
    ("视频https://media.example/v/abc123无法访问", ["/v/abc123"], ["media.example/***"]),
    ("ID:11010519491231002x;tel 156-3118-2714", ["11010519491231002x", "156-3118-2714"], []),
]


@pytest.mark.parametrize("text, gone, kept", CJK_CASES)
def test_mask_text_masks_personal_data_next_to_chinese_text(text, gone, kept):
    masked = pii.mask_text(text)
    assert all(g not in masked for g in gone), masked
    assert all(k in masked for k in kept), masked
    assert "已" in masked or "无法" in masked or "ID" in masked  # the message itself survives


def test_mask_text_masks_known_values_in_their_local_form():
    known = {"full_name": "王芳", "mobile": "+8615631182714", "national_id": "11010519491231002X"}
    masked = pii.mask_text("王芳的手机15631182714已注册", known=known.values())
    assert "王芳" not in masked and "15631182714" not in masked and "王*" in masked and "156****2714" in masked


def test_mask_text_leaves_ordinary_numbers_alone():
    assert pii.mask_text("HTTP 400: batch 20261201 has 12 rows, code 40001") == \
        "HTTP 400: batch 20261201 has 12 rows, code 40001"


def test_json_as_bytes_is_the_text_encoded_even_where_orjson_gives_up():
    doc = {"名": "王芳", "b": [1, 2.5, None], "a": True}
    assert jsonfast.dumpb(doc, sort_keys=True) == jsonfast.dumps(doc, sort_keys=True).encode()
    huge = {"id": 2**70, "名": "王芳"}  # beyond 64 bits: the stdlib writes it, as valid and as stable
    assert jsonfast.dumpb(huge) == jsonfast.dumps(huge).encode() == '{"id":1180591620717411303424,"名":"王芳"}'.encode()
    assert jsonfast.loads(jsonfast.dumpb(huge)) == huge
