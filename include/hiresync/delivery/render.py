"""What a target receives for a result version: rendered from the stored raw payload, not copied.

An outbox upsert row names the raw payload its result version came from and the mapping spec that
loaded it (its fingerprint; `mapping_versions` keeps every spec verbatim). Mapping that payload with
that spec gives the very record the load stored, so the body is the same at every retry (and so is
its idempotency key), and each payload is kept encrypted once, in `raw_payloads`, where retention
and erasure find it. A payload purged before its delivery leaves nothing to send: the row is
refused (dead) with that reason, never sent empty.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hiresync import jsonfast
from hiresync.hub.models import Candidate, InterviewResult, MappingVersion, RawPayload
from hiresync.mapping.spec import MappingSpec
from hiresync.privacy.pii import Keyring
from hiresync.privacy.payloads import open_payload
from hiresync.hub.bulk import one_of


def delivery_payload(vendor: str, key: str, rec: dict, version: int, candidate_key: str) -> dict:
    """What a target (or a workflow event) is built from; personal data plain, never stored so."""
    return {"candidate": {"candidate_key": candidate_key, **rec["candidate"]},
            "result": {"result_key": f"{vendor}:{key}", "vendor": vendor, "vendor_result_id": key, "version": version,
                       "mapping_version": rec["mapping_version"], **rec["result"]},
            "dimensions": rec["dimensions"]}


class RenderError(Exception):
    """This row cannot be rendered (its payload was purged, its spec is unknown): a reason, no value."""


_PURGED = "its raw payload was purged (retention or erasure) before delivery"
_specs: dict[str, MappingSpec] = {}  # fingerprint -> spec; specs never change under a fingerprint


def bodies(s: Session, keys: Keyring, rows: list, given: dict[str, dict] | None = None) -> dict[int, dict | RenderError]:
    """outbox row id -> its body: rendered for a reference, decrypted for a row that carries one.
    `rows` are Outbox rows (or rows with the same columns); `given`: idempotency key -> a body the
    load rendered already (see render)."""
    out: dict[int, dict | RenderError] = dict(render(s, keys, [r for r in rows if r.payload_enc is None], given))
    for r in rows:
        if r.payload_enc is not None:
            out[r.id] = jsonfast.loads(keys.decrypt_bytes(r.payload_enc, f"outbox:{r.target}:{r.idempotency_key}"))
    return out


def render(s: Session, keys: Keyring, rows: list, given: dict[str, dict] | None = None) -> dict[int, dict | RenderError]:
    """outbox row id -> body (or the reason it cannot be rendered), for rows that reference a payload.
    `rows` carry id, idempotency_key, result_id, result_version, raw_payload_id, mapping_fingerprint.

    `given`: idempotency key -> the body the load built when it wrote the row (it mapped the same
    payload with the same spec: the same body; hiresync.delivery.beside). Such a row is not rendered
    again, but it is checked as any other: its payload must still be stored (an erased or purged
    payload's row is refused, never sent), its candidate is the one the hub holds now and its
    version the row's."""
    if not rows:
        return {}
    given = given or {}
    handed = {r.raw_payload_id for r in rows if r.idempotency_key in given}
    stored = set(s.scalars(select(RawPayload.id).where(one_of(RawPayload.id, handed),
                                                       RawPayload.payload_enc.is_not(None)))) if handed else set()
    raws = {r.id: r for r in s.execute(
        select(RawPayload.id, RawPayload.source, RawPayload.payload_hash, RawPayload.payload_enc)
        .where(one_of(RawPayload.id, {row.raw_payload_id for row in rows if row.idempotency_key not in given})))}
    results = {r.id: r for r in s.execute(
        select(InterviewResult.id, InterviewResult.vendor, InterviewResult.vendor_result_id, Candidate.candidate_key)
        .join(Candidate, Candidate.id == InterviewResult.candidate_id)
        .where(one_of(InterviewResult.id, {row.result_id for row in rows})))}
    out: dict[int, dict | RenderError] = {}
    for row in rows:
        result = results.get(row.result_id)
        body = given.get(row.idempotency_key)
        if body is not None:
            if row.raw_payload_id not in stored or result is None:
                out[row.id] = RenderError(_PURGED)
            else:
                body["candidate"]["candidate_key"] = result.candidate_key
                body["result"]["version"] = row.result_version  # the row's word, as a rendering's
                out[row.id] = body
            continue
        raw = raws.get(row.raw_payload_id)
        if raw is None or raw.payload_enc is None or result is None:
            out[row.id] = RenderError(_PURGED)
            continue
        spec = _spec(s, row.mapping_fingerprint)
        if spec is None:
            out[row.id] = RenderError(f"mapping spec {row.mapping_fingerprint} is not in mapping_versions")
            continue
        payload = jsonfast.loads(open_payload(s, keys, raw.source, raw.payload_hash, raw.payload_enc))
        record, problems = spec.map(payload)
        if record is None:  # it mapped when it was loaded; only a changed normaliser could do this
            out[row.id] = RenderError(f"the stored payload no longer maps ({problems[0].rule} on {problems[0].field})")
            continue
        out[row.id] = delivery_payload(result.vendor, result.vendor_result_id, record, row.result_version,
                                       result.candidate_key)
    return out


def _spec(s: Session, fingerprint: str | None) -> MappingSpec | None:
    if fingerprint is None:
        return None
    if fingerprint not in _specs:
        text = s.scalar(select(MappingVersion.spec_text).where(MappingVersion.fingerprint == fingerprint).limit(1))
        if text is None:
            return None
        with tempfile.TemporaryDirectory(prefix="hiresync-spec-") as tmp:  # the loader reads files
            path = Path(tmp) / "mapping.yaml"
            path.write_text(text, encoding="utf-8")
            spec = MappingSpec.load(path)
            spec.__dict__["fingerprint"] = fingerprint  # the stored text's, not the temporary file's
        _specs[fingerprint] = spec
    return _specs[fingerprint]
