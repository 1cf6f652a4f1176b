"""Raw payloads as the hub keeps them: compressed, then encrypted, one copy of each.

One vendor result alone compresses to about 60% with zstd: a frame finds repeats only within
itself. Its source's other results share most of its bytes (keys, codes, labels, stock phrases),
so once a source that has no dictionary yet has TRAIN_FROM payloads (a load batch's new ones with
the newest the hub holds), a zstd dictionary is trained from them (`payload_dictionaries`, committed
with the batch) and the source's payloads are compressed against it from then on: a third of the
bytes on the simulator's data (its comments come from stock phrases; real ones vary more), in half
the time (docs/benchmarks.md).

It is trained on the samples' interview content alone (MappingSpec.interview_content: positions,
times, scores, statuses, comments, dimensions; the candidate's values, the interviewer, the links
but for their hosts, and every field the mapping does not read are blanked), so it holds no value
that identifies a person: it is kept as long as any payload needs it, and an erasure has nothing
to take from it (a dictionary keeps strings many samples share; a comment naming its candidate is
that payload's alone).

Payloads stored before, or while their source has no dictionary, are compressed alone (the
keyring's own compression); `open_payload` reads both, and `hiresync source compact-payloads`
re-seals them against the dictionary (hiresync.tools.compact). A frame names its dictionary by
zstd's dictionary id (random at training, unique in the hub).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import zstandard
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hiresync import jsonfast
from hiresync.errors import HireSyncError
from hiresync.hub.models import PayloadDictionary, RawPayload
from hiresync.privacy.pii import DICTIONARY_PREFIX, Keyring, uncompressed

log = logging.getLogger(__name__)
TRAIN_FROM = 1_000  # payloads of the source; fewer train a dictionary that fits them too closely
# The most it is trained on, and its size. Chosen by hand on the simulator's payloads (no script
# keeps the comparison): 1,000 samples did as well as 2,000, 8 KB nearly as well as 16, 32 and 64 KB
# no better.
SAMPLES = 2_000
DICTIONARY_BYTES = 16_384


def context(source: str, payload_hash: str) -> str:
    """The associated data a raw payload is encrypted with: bound to its source and hash."""
    return f"raw_payloads:{source}:{payload_hash}"


def seal(keys: Keyring, source: str, payload_hash: str, payload: bytes,
         dictionary: zstandard.ZstdCompressionDict | None) -> str:
    """A payload's stored form: against its source's dictionary when there is one."""
    if dictionary is None:
        return keys.encrypt(payload, context(source, payload_hash), compress=True)
    return keys.encrypt(_against(dictionary, payload), context(source, payload_hash))


def reseal(keys: Keyring, source: str, payload_hash: str, token: str,
           dictionary: zstandard.ZstdCompressionDict) -> tuple[str, int, int] | None:
    """A payload stored compressed alone, sealed against `dictionary` instead: (its new stored form,
    its compressed bytes before, after). None when it is compressed against a dictionary already."""
    where = context(source, payload_hash)
    sealed = keys.decrypt_sealed(token, where)
    if sealed.startswith(DICTIONARY_PREFIX):
        return None
    frame = _against(dictionary, uncompressed(sealed, where))
    return keys.encrypt(frame, where), len(sealed), len(frame)


def _against(dictionary: zstandard.ZstdCompressionDict, payload: bytes) -> bytes:
    return DICTIONARY_PREFIX + _codecs.compressor(dictionary).compress(payload)


def open_payload(s: Session, keys: Keyring, source: str, payload_hash: str, token: str) -> bytes:
    """A stored payload's bytes (JSON), however it was compressed; `s` is a session on its hub."""
    where = context(source, payload_hash)
    data = keys.decrypt_sealed(token, where)
    if not data.startswith(DICTIONARY_PREFIX):
        return uncompressed(data, where)
    frame = data[len(DICTIONARY_PREFIX):]
    dict_id = zstandard.get_frame_parameters(frame).dict_id
    return _codecs.decompressor(_dictionary(s, dict_id, source)).decompress(frame)


def dictionary_for(s: Session, keys: Keyring, source: str, run_id: str, new_payloads: list[dict],
                   content: Callable[[dict], dict]) -> zstandard.ZstdCompressionDict | None:
    """The source's dictionary. If it has none yet and `new_payloads` (a batch's payloads the hub
    does not hold yet), with the newest payloads the hub holds of the source, are TRAIN_FROM or
    more, one is trained from them, each reduced to its interview `content`, and added to the
    session's transaction; else None (each payload is then compressed alone). The stored ones count
    for a source that only ever brings a few results per run: hourly syncs reach TRAIN_FROM too."""
    row = s.execute(select(PayloadDictionary.dict_id, PayloadDictionary.content)
                    .where(PayloadDictionary.source == source)).first()
    if row is not None:
        return _cached(s, row.dict_id, row.content)
    payloads = new_payloads[:SAMPLES] + _stored(s, keys, source, have=len(new_payloads))
    if len(payloads) < TRAIN_FROM:
        return None
    samples = [jsonfast.dumpb(content(p)) for p in payloads]
    try:
        trained = zstandard.train_dictionary(DICTIONARY_BYTES, samples)
    except zstandard.ZstdError as exc:  # samples zstd cannot learn from: compressed alone, as before
        log.warning("no compression dictionary for %s (%s); payloads are compressed one by one", source, exc)
        return None
    s.add(PayloadDictionary(source=source, dict_id=trained.dict_id(), content=trained.as_bytes(),
                            samples=len(samples), run_id=run_id))
    s.flush()
    return _cached(s, trained.dict_id(), trained.as_bytes())


def _stored(s: Session, keys: Keyring, source: str, have: int) -> list[dict]:
    """The source's newest stored payloads, as many as SAMPLES leaves beside `have` new ones; none
    if they would not reach TRAIN_FROM together (counted first, as a source with few payloads is
    asked at every load batch until it has a dictionary)."""
    held = RawPayload.source == source, RawPayload.payload_enc.is_not(None)
    if have >= SAMPLES:
        return []
    if (s.scalar(select(func.count()).select_from(RawPayload).where(*held)) or 0) + have < TRAIN_FROM:
        return []
    rows = s.execute(select(RawPayload.payload_hash, RawPayload.payload_enc).where(*held)
                     .order_by(RawPayload.id.desc()).limit(SAMPLES - have)).all()
    return [jsonfast.loads(open_payload(s, keys, source, h, enc)) for h, enc in rows]


# (hub, zstd dictionary id) -> dictionary. A dictionary never changes once stored.
_dictionaries: dict[tuple[str, int], zstandard.ZstdCompressionDict] = {}


def _cached(s: Session, dict_id: int, content: bytes) -> zstandard.ZstdCompressionDict:
    key = (_hub(s), dict_id)
    if key not in _dictionaries:
        _dictionaries[key] = zstandard.ZstdCompressionDict(content)
    return _dictionaries[key]


def _dictionary(s: Session, dict_id: int, source: str) -> zstandard.ZstdCompressionDict:
    if (known := _dictionaries.get((_hub(s), dict_id))) is not None:
        return known
    content = s.scalar(select(PayloadDictionary.content).where(PayloadDictionary.dict_id == dict_id))
    if content is None:
        raise HireSyncError(f"a raw payload of {source!r} names compression dictionary {dict_id}, "
                            f"which this hub does not have (payload_dictionaries)")
    return _cached(s, dict_id, content)


def _hub(s: Session) -> str:
    return s.get_bind().engine.url.render_as_string(hide_password=True)


class _Codecs(threading.local):
    """zstd's compressor and decompressor objects are not for two threads at once: per thread, one
    of each per dictionary (building one prepares the dictionary: not once per payload)."""

    def __init__(self) -> None:
        self._compressors: dict[int, zstandard.ZstdCompressor] = {}
        self._decompressors: dict[int, zstandard.ZstdDecompressor] = {}

    def compressor(self, dictionary: zstandard.ZstdCompressionDict) -> zstandard.ZstdCompressor:
        if id(dictionary) not in self._compressors:
            self._compressors[id(dictionary)] = zstandard.ZstdCompressor(level=1, dict_data=dictionary)
        return self._compressors[id(dictionary)]

    def decompressor(self, dictionary: zstandard.ZstdCompressionDict) -> zstandard.ZstdDecompressor:
        if id(dictionary) not in self._decompressors:
            self._decompressors[id(dictionary)] = zstandard.ZstdDecompressor(dict_data=dictionary)
        return self._decompressors[id(dictionary)]


_codecs = _Codecs()
