"""JSON on the hot path (staging, payload hashes, outbox): orjson, about 5x the stdlib.

orjson refuses integers beyond 64 bits, which a vendor payload may hold; those documents fall
back to the stdlib encoder, whose output is equally valid and equally stable."""

from __future__ import annotations

import json
from typing import Any

import orjson

loads = orjson.loads


def dumps(obj: Any, sort_keys: bool = False) -> str:
    return dumpb(obj, sort_keys).decode()


def dumpb(obj: Any, sort_keys: bool = False) -> bytes:
    """The same document as UTF-8 bytes: what hashing and encryption take, without decoding a
    staged batch of megabytes to text and encoding it back."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(obj, sort_keys=sort_keys, ensure_ascii=False, separators=(",", ":"), default=str).encode()
