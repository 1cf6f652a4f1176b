"""Personal data protection: column encryption, blind indexes and masks.

AES-256-GCM with a fresh 12-byte nonce per value; the associated data binds a ciphertext to
its table, column and row, so a ciphertext copied to another row does not decrypt. Blind
indexes are keyed HMAC-SHA256 (a plain hash of an 18-digit ID is brute-forceable), under a key
of their own per field. Keys are versioned so that rotation can re-encrypt gradually; every
stored value names its version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
import zstandard

from hiresync.config.files import private_dir
from hiresync.errors import KeyMaterialError

# Prefixes of a plaintext compressed before encryption. Text never starts with NUL, so neither can
# be mistaken for a plain value. Payloads are written with zstd; deflated ones (hubs and staging
# written before it) still read.
_ZSTD = b"\x00s"
_DEFLATED = b"\x00z"
# A raw payload compressed with its source's zstd dictionary, which the hub keeps: only
# hiresync.privacy.payloads, which has the hub at hand, reads it.
DICTIONARY_PREFIX = b"\x00D"

# The fields that have a blind index, each under its own derived key (see Keyring.blind_index).
BLIND_INDEX_FIELDS = ("national_id", "mobile", "email")


@dataclass(frozen=True)
class KeyVersion:
    version: int
    enc: bytes  # 32 bytes, AES-256-GCM
    idx: bytes  # 32 bytes, HMAC-SHA256 blind index


class Keyring:
    """The active key version encrypts; any known version decrypts."""

    def __init__(self, versions: dict[int, KeyVersion], active: int):
        if active not in versions:
            raise KeyMaterialError(f"active key version {active} is not in the keyring")
        self._versions = versions
        self.active = active
        self._aead = {v: AESGCM(k.enc) for v, k in versions.items()}
        self._field_keys: dict[tuple[int, str], bytes] = {}
        # Set by privacy.keys.hub_keys while the hub still holds candidates indexed the pre-0014 way
        # (one key for every field): lookups then also try that form, so nobody is missed meanwhile.
        self.match_legacy_blind_indexes = False

    def __reduce__(self):
        """To a helper process of ours over its private pipe (hiresync.delivery.beside): it cannot
        ask Airflow for the key connection itself."""
        return _keyring, (self._versions, self.active, self.match_legacy_blind_indexes)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def from_json(cls, text: str) -> "Keyring":
        try:
            doc = json.loads(text)
            versions = {
                int(v): KeyVersion(int(v), base64.b64decode(k["enc"]), base64.b64decode(k["idx"]))
                for v, k in doc["keys"].items()
            }
            active = int(doc["active"])
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyMaterialError(f"the key material is not a valid HireSync keyring ({type(exc).__name__})") from None
        for k in versions.values():
            if len(k.enc) != 32 or len(k.idx) != 32:
                raise KeyMaterialError(f"key version {k.version} must hold two 32-byte keys")
        return cls(versions, active)

    @classmethod
    def load(cls, key_file: Path) -> "Keyring":
        """Production: HIRESYNC_KEYS (the keyring JSON, from a secrets backend) or the password of
        the Airflow Connection named by HIRESYNC_KEYS_CONNECTION. Demo: the local key file."""
        if text := os.environ.get("HIRESYNC_KEYS"):
            return cls.from_json(text)
        if conn_id := os.environ.get("HIRESYNC_KEYS_CONNECTION"):
            from hiresync.config.connections import get_connection

            secret = get_connection(conn_id).password
            if not secret:
                raise KeyMaterialError(f"connection {conn_id!r} holds no keyring in its password")
            return cls.from_json(secret)
        if not key_file.exists():
            raise KeyMaterialError(
                f"no encryption key: {key_file} does not exist and HIRESYNC_KEYS is not set. "
                "Run 'hiresync init' once to generate a local key, or provide the production key."
            )
        return cls.from_json(key_file.read_text())

    @staticmethod
    def generate(key_file: Path) -> None:
        if key_file.exists():
            raise KeyMaterialError(f"{key_file} exists already; refusing to overwrite a key")
        private_dir(key_file.parent)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"active": 1, "keys": {"1": _new_key()}}, f)

    @staticmethod
    def add_version(key_file: Path) -> int:
        """A new active key version in a local key file; older versions stay so old data decrypts."""
        doc = json.loads(key_file.read_text())
        version = max(int(v) for v in doc["keys"]) + 1
        doc["keys"][str(version)] = _new_key()
        doc["active"] = version
        tmp = key_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        tmp.replace(key_file)  # atomic: a sync reading the file sees the old or the new keyring
        return version

    # -- use -------------------------------------------------------------------------------
    def encrypt(self, plaintext: str | bytes, context: str, compress: bool = False) -> str:
        """AES-GCM under the active key, bound to `context`; text is encrypted as UTF-8. `compress`
        compresses first (zstd, level 1): for whole payloads (a vendor's JSON result shrinks to about
        60%, a staged batch of them to a tenth), not for single values."""
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        if compress:
            data = _ZSTD + _zstd.compress(data)
        nonce = os.urandom(12)
        ct = self._aead[self.active].encrypt(nonce, data, context.encode())
        return f"v{self.active}:{_b64(nonce + ct)}"

    def decrypt(self, token: str, context: str) -> str:
        return self.decrypt_bytes(token, context).decode()

    def decrypt_bytes(self, token: str, context: str) -> bytes:
        """The plaintext as bytes (UTF-8 for text): for a JSON document, what the parser takes."""
        return uncompressed(self.decrypt_sealed(token, context), context)

    def reencrypt(self, token: str, context: str) -> str:
        """The same plaintext under the active key (a key rotation), compressed or not as it was."""
        return self.encrypt(self.decrypt_sealed(token, context), context)

    def decrypt_sealed(self, token: str, context: str) -> bytes:
        """The plaintext as it was encrypted: still compressed, if it was."""
        head, _, body = token.partition(":")
        try:
            version = int(head[1:])
            raw = base64.b64decode(body)
            data = self._aead[version].decrypt(raw[:12], raw[12:], context.encode())
        except KeyError:
            raise KeyMaterialError(f"key version {head[1:]} is not in the keyring") from None
        except (InvalidTag, ValueError):
            raise KeyMaterialError(f"a value in {context.split(':')[0]} does not decrypt with key version {head[1:]}: wrong key?") from None
        return data

    def blind_index(self, value: str, field: str, version: int | None = None) -> str:
        """The blind index of `value` as a `field` ("national_id", "mobile" or "email") under one key
        version (default: the active one).

        Each field has its own key, HMAC-SHA256(version's index key, "hiresync-bidx|" + field), so
        an index is only ever comparable with indexes of the same field: a resident ID can never
        match a phone number that happens to be the same string, and a leaked index table of one
        field (say e-mail, the easiest to guess) is no dictionary for the others. Indexes stay per
        key version: a rotation re-indexes (privacy.keys.rotate)."""
        if field not in BLIND_INDEX_FIELDS:
            raise ValueError(f"no blind index for field {field!r}: it must be one of {', '.join(BLIND_INDEX_FIELDS)}")
        v = version or self.active
        key = self._field_keys.get((v, field))
        if key is None:
            if v not in self._versions:
                raise KeyMaterialError(f"key version {v} is not in the keyring")
            key = hmac.new(self._versions[v].idx, b"hiresync-bidx|" + field.encode(), hashlib.sha256).digest()
            self._field_keys[(v, field)] = key
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def blind_indexes(self, value: str, field: str) -> list[str]:
        """The value's index under every known version: rows not yet re-keyed must still match. While
        the hub is not fully re-indexed from the one-key-for-all-fields scheme, also that form."""
        out = [self.blind_index(value, field, v) for v in sorted(self._versions)]
        if self.match_legacy_blind_indexes:
            out += [self.legacy_blind_index(value, v) for v in sorted(self._versions)]
        return out

    def legacy_blind_index(self, value: str, version: int) -> str:
        """The index hubs before migration 0014 stored: the version's index key used directly, the same
        for every field. Only for finding and re-indexing such rows; nothing new is written this way."""
        return hmac.new(self._versions[version].idx, value.encode(), hashlib.sha256).hexdigest()

    def pseudonym(self, purpose: str, value: str, length: int = 16) -> str:
        """A stable keyed pseudonym of `value` for one purpose (a file name holding personal data, ...):
        HMAC-SHA256 under a key derived for that purpose from the *first* key version's index key, so it
        stays the same across rotations (a rotation adds versions; the first one is kept while any
        data is on it). Another purpose gives an unrelated value."""
        first = self._versions[min(self._versions)].idx
        key = hmac.new(first, b"hiresync-purpose|" + purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:length]

    def version_of(self, token: str) -> int:
        return int(token.partition(":")[0][1:])

    def fingerprints(self) -> dict[int, str]:
        """Identifies each key version without revealing it (256-bit keys: a hash gives nothing away)."""
        return {v: hashlib.sha256(b"hiresync-key-check|" + k.enc + k.idx).hexdigest()[:32]
                for v, k in self._versions.items()}


def uncompressed(data: bytes, context: str) -> bytes:
    """A decrypted plaintext without the compression it was encrypted with (Keyring.encrypt's)."""
    if data.startswith(_ZSTD):
        return _zstd.decompress(data[len(_ZSTD):])
    if data.startswith(_DEFLATED):
        return zlib.decompress(data[len(_DEFLATED):])
    if data.startswith(DICTIONARY_PREFIX):
        raise KeyMaterialError(f"a value in {context.split(':')[0]} is compressed with a payload dictionary; "
                               f"hiresync.privacy.payloads.open_payload reads it")
    return data


def _new_key() -> dict:
    return {"enc": _b64(secrets.token_bytes(32)), "idx": _b64(secrets.token_bytes(32))}


class _Zstd(threading.local):
    """zstd's compressor and decompressor objects are not for two threads at once (the webhook
    receiver stores payloads from several): one pair per thread. Level 1 is about four times as fast
    as zlib's level 1 on a vendor's result, for about 5% more bytes (`bench/pii.py`)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=1)
        self.decompressor = zstandard.ZstdDecompressor()

    def compress(self, data: bytes) -> bytes:
        return self.compressor.compress(data)  # the frame records its size: decompress needs no limit

    def decompress(self, data: bytes) -> bytes:
        return self.decompressor.decompress(data)


_zstd = _Zstd()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


# -- masks: what a person may see when the full value is not theirs to see -------------------
def mask_national_id(v: str) -> str:
    return v[:6] + "*" * 8 + v[-4:] if len(v) == 18 else "*" * len(v)


def mask_mobile(v: str) -> str:
    digits = v[3:] if v.startswith("+86") else v
    return digits[:3] + "****" + digits[-4:] if len(digits) == 11 else "*" * len(digits)


def mask_email(v: str) -> str:
    local, at, domain = v.partition("@")
    return (local[:1] + "***" + at + domain) if at else "***"


def mask_name(v: str) -> str:
    # Compound surnames (欧阳, 司马) are rare enough that showing one character is the safe side.
    return v[:1] + "*" * max(len(v) - 1, 1) if v else v


def mask_url(v: str) -> str:
    return v.split("//", 1)[-1].split("/", 1)[0] + "/***" if v else v


MASKS = {
    "national_id": mask_national_id,
    "mobile": mask_mobile,
    "email": mask_email,
    "name": mask_name,
    "url": mask_url,
}


def mask_value(kind: str | None, value: object) -> str:
    """Masked text of an offending value for error messages; non-personal values are shortened."""
    if value is None:
        return "null"
    if kind in MASKS:
        return MASKS[kind](str(value))
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- free text from outside: one masking function for everything stored, logged or alerted ---------
# Digit and letter look-arounds rather than \b: Python's \b does not hold between a CJK character
# and a digit (both are "word" characters), so "手机号15631182714" would pass a \b pattern unmasked.
_URL = re.compile(r"https?://[!-~]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_NATIONAL_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
_SHAPES = [
    (_URL, mask_url),
    (_EMAIL, mask_email),
    (_NATIONAL_ID, mask_national_id),
    (_MOBILE, lambda v: mask_mobile(re.sub(r"\D", "", v)[-11:])),
]


def _mask_known(value: str) -> str:
    if _URL.fullmatch(value):
        return mask_url(value)
    if _EMAIL.fullmatch(value):
        return mask_email(value)
    if _NATIONAL_ID.fullmatch(value):
        return mask_national_id(value)
    if _MOBILE.fullmatch(value):
        return mask_mobile(re.sub(r"\D", "", value)[-11:])
    return mask_name(value)


def _forms(value: str) -> set[str]:
    """The value and the forms it may be quoted in: a phone held as +86… is quoted without it."""
    forms = {value, value.upper(), value.lower()}
    digits = re.sub(r"\D", "", value)
    if _MOBILE.fullmatch(value) and len(digits) >= 11:
        forms |= {digits[-11:], "86" + digits[-11:], "+86" + digits[-11:]}
    return forms


def mask_text(text: object, known: Iterable[object] = (), limit: int | None = None) -> str:
    """Free text from outside (a target's or vendor's error, an exception) with personal data masked.

    `known` are the values of the record concerned (name, resident ID, phone, email, links): each is
    masked wherever it occurs, in any of its forms, even where no pattern would recognise it (a name).
    Then anything shaped like a resident ID, a mainland mobile (with or without +86 and separators),
    an e-mail address or a link is masked. Whitespace is collapsed; `limit` trims to that many
    characters."""
    out = str(text)
    for value in sorted({str(v).strip() for v in known if v is not None and str(v).strip()}, key=len, reverse=True):
        masked = _mask_known(value)
        for form in sorted(_forms(value), key=len, reverse=True):
            if len(form) >= 2 and form in out:
                out = out.replace(form, masked)
    for pattern, mask in _SHAPES:
        out = pattern.sub(lambda m, mask=mask: mask(m.group(0)), out)
    out = " ".join(out.split())
    if limit is not None and len(out) > limit:
        out = out[: limit - 3] + "..."
    return out


def _keyring(versions: dict[int, KeyVersion], active: int, match_legacy: bool) -> Keyring:
    keys = Keyring(versions, active)
    keys.match_legacy_blind_indexes = match_legacy
    return keys
