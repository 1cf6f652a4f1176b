"""What an integrator runs before enabling a mapping: `hiresync mapping test` and `mapping diff`.

Both load the mapping spec first, so a spec with a mistake is refused (file, key, problem) before
any record is touched. Both show canonical values masked wherever they are personal data.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from hiresync import jsonfast
from hiresync.errors import HireSyncError
from hiresync.hub.models import MappingVersion, RawPayload
from hiresync.privacy.payloads import open_payload
from hiresync.hub.store import transaction
from hiresync.mapping.spec import PII_KIND, MappingSpec
from hiresync.privacy.keys import hub_keys
from hiresync.privacy.pii import Keyring, mask_value
from hiresync.config.settings import Settings
from hiresync.config.sources import load_sources


# -- mapping test ----------------------------------------------------------------------------------
def read_payloads(path: Path) -> list:
    """A JSON file (one object, or a list of them) or NDJSON (one object per line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise HireSyncError(f"{path}: cannot read payload file ({type(exc).__name__})") from None
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError:
        pass
    payloads = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            payloads.append(json.loads(line))
        except json.JSONDecodeError as exc:
            # exc.msg names the syntax problem only ("Expecting value"), never the content.
            raise HireSyncError(f"{path}: line {n}: not valid JSON or NDJSON ({exc.msg}, column {exc.colno})") from None
    return payloads


# (mapped [(record number, canonical record)], spec) -> {record number: [problem dicts]}: the batch
# checks the sync applies after mapping (contract/canonical_suite.py: FUTURE, ORDER, DUPLICATE_KEY,
# ranges, status set), passed in by the caller because the contract layer sits above this one.
CanonicalCheck = Callable[[list[tuple[int, dict]], MappingSpec], dict[int, list[dict]]]


def try_mapping(mapping_file: Path, payload_file: Path, canonical_check: CanonicalCheck | None = None) -> list[dict]:
    """Per payload: {"record": n, "key", "canonical": masked record} or {"record": n, "key", "errors": [...]}."""
    spec = MappingSpec.load(mapping_file)
    out, mapped = [], []
    for n, payload in enumerate(read_payloads(payload_file), 1):
        record, problems = spec.map(payload)
        entry = {"record": n, "key": spec.key_of(payload)}
        if problems:
            entry["errors"] = [p.as_dict() for p in problems]
        else:
            mapped.append((n, record))
        out.append(entry)
    failing = canonical_check(mapped, spec) if canonical_check and mapped else {}
    records = dict(mapped)
    for entry in out:
        n = entry["record"]
        if n in failing:
            entry["errors"] = failing[n]
        elif n in records:
            entry["canonical"] = mask_record(records[n])
    return out


def mask_record(record: dict) -> dict:
    masked = {**record, "candidate": dict(record["candidate"]), "result": dict(record["result"])}
    for name, value in flatten(record).items():
        if name in PII_KIND and value is not None:
            part, _, field = name.rpartition(".")
            (masked["candidate"] if part == "candidate" else masked["result"])[field] = mask_value(PII_KIND[name], value)
    return masked


def flatten(record: dict) -> dict:
    """Canonical record -> {"candidate.full_name": ..., "overall_score": ..., "dimensions[COMM].score": ...}."""
    flat = {f"candidate.{k}": v for k, v in record["candidate"].items()}
    flat.update(record["result"])
    for i, dim in enumerate(record["dimensions"]):
        label = dim.get("code") or i
        flat.update({f"dimensions[{label}].{k}": v for k, v in dim.items()})
    return flat


# -- mapping diff ----------------------------------------------------------------------------------
def diff_mapping(settings: Settings, mapping_file: Path, against: str, source: str | None = None) -> dict:
    """For the stored payloads of the mapping's source: what mapping `mapping_file` would change
    compared with `against` (a file, or a version of the same mapping recorded in the hub)."""
    new = MappingSpec.load(mapping_file)
    source = source or _source_of(settings, new)
    with tempfile.TemporaryDirectory(prefix="hiresync-mapping-") as tmp:
        old = _load_against(settings, new, against, Path(tmp))
        keys = hub_keys(settings)
        changes, compared = [], 0
        for key, payload in _stored_payloads(settings, source, keys):
            compared += 1
            change = _compare(key, old, new, payload)
            if change:
                changes.append(change)
    fields: dict[str, int] = {}
    for c in changes:
        for f in c.get("fields", []):
            fields[f["field"]] = fields.get(f["field"], 0) + 1
    return {"source": source, "mapping": new.name, "old_version": old.version, "new_version": new.version,
            "compared": compared, "changed": len(changes), "changed_by_field": fields, "changes": changes}


def _compare(key: str, old: MappingSpec, new: MappingSpec, payload: dict) -> dict | None:
    old_rec, old_errs = old.map(payload)
    new_rec, new_errs = new.map(payload)
    if old_rec is None and new_rec is None:
        before, after = {(p.field, p.rule) for p in old_errs}, {(p.field, p.rule) for p in new_errs}
        return None if before == after else {"key": key, "change": "errors_differ",
                                             "old_errors": [p.as_dict() for p in old_errs],
                                             "new_errors": [p.as_dict() for p in new_errs]}
    if old_rec is None:
        return {"key": key, "change": "now_maps", "old_errors": [p.as_dict() for p in old_errs]}
    if new_rec is None:
        return {"key": key, "change": "now_fails", "new_errors": [p.as_dict() for p in new_errs]}
    a, b = flatten(old_rec), flatten(new_rec)
    fields = [{"field": f, "old": _shown(f, a.get(f)), "new": _shown(f, b.get(f))}
              for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
    return {"key": key, "change": "fields", "fields": fields} if fields else None


def _shown(field: str, value):
    if value is None:
        return None
    return mask_value(PII_KIND[field], value) if field in PII_KIND else value


def _source_of(settings: Settings, spec: MappingSpec) -> str:
    matches = [name for name, cfg in load_sources(settings).items()
               if cfg.mapping.exists() and MappingSpec.load(cfg.mapping).name == spec.name]
    if len(matches) != 1:
        raise HireSyncError(f"mapping {spec.name!r} is used by {len(matches)} sources in {settings.sources_file}; "
                            "name one with --source")
    return matches[0]


def _load_against(settings: Settings, new: MappingSpec, against: str, tmp: Path) -> MappingSpec:
    if Path(against).is_file():
        return MappingSpec.load(Path(against))
    with transaction(settings.hub_url) as s:
        stored = s.scalars(select(MappingVersion).where(MappingVersion.mapping == new.name)
                           .order_by(MappingVersion.created_at.desc())).all()
    text = next((m.spec_text for m in stored if m.version == against), None)
    if text is None:
        known = ", ".join(sorted({m.version for m in stored})) or "none yet"
        raise HireSyncError(f"--against {against!r}: no such file, and no version {against!r} of mapping "
                            f"{new.name!r} in the hub (versions that loaded data: {known})")
    path = tmp / f"{new.name}-{against}.yaml"
    path.write_text(text, encoding="utf-8")
    return MappingSpec.load(path)


def _stored_payloads(settings: Settings, source: str, keys: Keyring):
    """The newest stored payload of each result of the source (loaded or quarantined), decrypted."""
    with transaction(settings.hub_url) as s:
        rows = s.execute(select(RawPayload.vendor_result_id, RawPayload.payload_hash, RawPayload.payload_enc)
                         .where(RawPayload.source == source).order_by(RawPayload.id)).all()
        newest = {key: (h, enc) for key, h, enc in rows}  # later rows win: the newest payload stored
        for key, (h, enc) in sorted(newest.items()):  # read in the session: a dictionary may be looked up
            yield key, jsonfast.loads(open_payload(s, keys, source, h, enc))
