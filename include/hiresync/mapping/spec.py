"""The mapping engine: a versioned YAML spec turns one vendor payload into one canonical record.

A spec names, for each canonical field, where its value is in the payload (a dotted path), what
kind of value it is (which decides the normaliser) and whether it is required. Every error is
field-level (field, rule, masked value) so that a bad record is quarantined with a reason and
the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from connectors.records import get_path
from connectors.rest.incremental import NAMED_FORMATS, CursorFormat
from hiresync import jsonfast
from hiresync.privacy import identifiers
from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError
from hiresync.privacy.pii import mask_value

# Canonical fields of the EHR candidate record, version 1 (DESIGN.md). The spec may map a subset;
# the required ones below must be mapped.
CANDIDATE_FIELDS = ("vendor_candidate_id", "full_name", "national_id", "mobile", "email")
RESULT_FIELDS = (
    "position_code", "position_name", "department", "business_unit", "started_at", "completed_at",
    "overall_score", "ai_comment", "recommendation", "status", "video_url", "video_expires_at",
    "report_url", "interviewer", "source_updated_at",
)
DIMENSION_FIELDS = ("code", "name", "score", "comment")
STATUSES = ("passed", "failed", "pending_review", "incomplete")
RECOMMENDATIONS = ("recommended", "hold", "not_recommended")
MINIMUM_AGE = 16  # China's Labour Law: no employment under 16
MUST_MAP = ("candidate.national_id", "candidate.full_name", "source_updated_at", "status", "overall_score")

TYPES = ("text", "free_text", "national_id", "mobile", "email", "datetime", "score", "enum", "url", "number")

# Result fields that are not interview content: who interviewed, and links that lead to the person.
NOT_CONTENT = ("interviewer", "video_url", "report_url")

# Which mask applies to a field's offending value in an error message.
PII_KIND = {
    "candidate.full_name": "name", "candidate.national_id": "national_id", "candidate.mobile": "mobile",
    "candidate.email": "email", "video_url": "url",
}

_SCHEMA = {
    "$defs": {
        "field": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "path": {"type": "string", "minLength": 1},
                "const": {},
                "type": {"enum": list(TYPES)},
                "required": {"type": "boolean"},
                "default": {},
                "timezone": {"type": "string"},
                "format": {"type": "string", "minLength": 1},
                "scale": {"oneOf": [{"type": "number", "exclusiveMinimum": 0},
                                    {"type": "object", "required": ["path"], "additionalProperties": False,
                                     "properties": {"path": {"type": "string"}}}]},
                "values": {"type": "object"},
            },
            "oneOf": [{"required": ["path"]}, {"required": ["const"]}],
        },
        "fields": {"type": "object", "additionalProperties": {"$ref": "#/$defs/field"}},
    },
    "type": "object",
    "additionalProperties": False,
    "required": ["mapping", "version", "vendor", "key", "candidate", "result"],
    "properties": {
        "mapping": {"type": "string"},
        "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
        "vendor": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "description": {"type": "string"},
        "key": {"type": "string"},
        "candidate": {"$ref": "#/$defs/fields", "propertyNames": {"enum": list(CANDIDATE_FIELDS)}},
        "result": {"$ref": "#/$defs/fields", "propertyNames": {"enum": list(RESULT_FIELDS)}},
        "dimensions": {
            "type": "object", "additionalProperties": False, "required": ["path", "fields"],
            "properties": {"path": {"type": "string"},
                           "fields": {"$ref": "#/$defs/fields", "propertyNames": {"enum": list(DIMENSION_FIELDS)}}},
        },
        # The vendor's dimension code or name -> the group's competency code (competencies.yaml).
        "competencies": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
    },
}


class FieldError(Exception):
    def __init__(self, rule: str, detail: str = ""):
        self.rule, self.detail = rule, detail


@dataclass(frozen=True)
class Problem:
    """One field-level reason a record cannot be loaded. `value` is masked if it is personal data."""

    field: str
    rule: str
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "value": self.value}


@dataclass(frozen=True)
class FieldSpec:
    name: str                     # canonical name, e.g. "candidate.national_id" or "overall_score"
    path: str | None
    const: Any = None
    type: str = "text"
    required: bool = False
    default: Any = None
    timezone: str = "UTC"
    scale: float | str | None = None  # a number, or a path to the scale in the payload
    values: dict = field(default_factory=dict)
    format: str | None = None     # datetime only: iso, epoch_s, epoch_ms or a strftime pattern; None = ISO or epoch s

    @classmethod
    def parse(cls, name: str, doc: dict, where: str = "mapping", key: str | None = None) -> "FieldSpec":
        scale = doc.get("scale")
        spec = cls(name=name, path=doc.get("path"), const=doc.get("const"), type=doc.get("type", "text"),
                   required=doc.get("required", False), default=doc.get("default"),
                   timezone=doc.get("timezone", "UTC"), values={str(k): v for k, v in doc.get("values", {}).items()},
                   scale=scale["path"] if isinstance(scale, dict) else scale, format=doc.get("format"))
        # the field's key in the YAML file, as the schema check names it
        spec._check(where, doc, key or (name if name.startswith("candidate.") else f"result.{name}"))
        return spec

    def _check(self, where: str, doc: dict, key: str) -> None:
        if "format" in doc and self.type != "datetime":
            raise ConfigError(where, f"{key}.format", "format applies to type: datetime only")
        if self.format is not None and self.format not in NAMED_FORMATS and "%" not in self.format:
            raise ConfigError(where, f"{key}.format",
                              f"must be one of {', '.join(NAMED_FORMATS)} or a strftime pattern like \"%Y-%m-%d %H:%M:%S\"")
        try:
            ZoneInfo(self.timezone)
        except (ValueError, KeyError):
            raise ConfigError(where, f"{key}.timezone", "not an IANA timezone like Asia/Shanghai") from None

    @cached_property
    def time_format(self) -> CursorFormat | None:
        """The declared datetime format, read exactly like the profile's cursor; None = ISO text or epoch seconds."""
        return CursorFormat(self.format, self.timezone) if self.format else None

    @cached_property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split(".")) if self.path else ()

    @cached_property
    def read(self) -> Callable[[Any], Any]:
        """The path as a function of the payload, built once: the mapper runs it for every record."""
        return _reader(self.parts)

    @cached_property
    def read_scale(self) -> Callable[[Any], Any] | None:
        return _reader(tuple(self.scale.split("."))) if isinstance(self.scale, str) else None

    @cached_property
    def convert(self) -> Callable[["FieldSpec", Any, dict], Any]:
        """This field's normaliser (raw value, not None -> canonical value), looked up once."""
        return _CONVERTERS.get(self.type, _unknown_type)

    def extract(self, payload: dict) -> Any:
        if self.path is None:
            return self.const
        value = self.read(payload)
        return self.default if value is None or value == "" else value

    def scale_of(self, payload: dict) -> Any:
        return self.read_scale(payload) if self.read_scale else (self.scale or 100)


def _kept(node: Any, here: tuple[str, ...], keep: frozenset, dimensions: tuple | None,
          links: frozenset = frozenset()) -> Any:
    """A copy of `node` (at path `here`) with the values at `keep`'s paths and every dimension's
    mapped fields, of a link at `links` only its scheme and host, and no other value."""
    if isinstance(node, dict):
        return {k: _kept(v, here + (k,), keep, dimensions, links) for k, v in node.items()}
    if isinstance(node, list):
        if dimensions is not None and here == dimensions[0]:  # each dimension: its own fields' paths
            return [_kept(item, (), dimensions[1], None) for item in node]
        return [_kept(item, here, keep, dimensions, links) for item in node]
    if here in keep or node is None or isinstance(node, bool):
        return node
    if here in links and isinstance(node, str):  # a vendor's host names nobody; the path may
        try:
            parts = urlsplit(node)
            return f"{parts.scheme}://{parts.hostname}/" if parts.scheme and parts.hostname else ""
        except ValueError:
            return ""
    return "" if isinstance(node, str) else 0


def _reader(parts: tuple[str, ...]) -> Callable[[Any], Any]:
    if len(parts) == 1:  # most of a spec's paths, dimensions' fields included
        (part,) = parts
        return lambda node: node.get(part) if isinstance(node, dict) else None
    return lambda node: get_path(node, parts)


@dataclass(frozen=True)
class MappingSpec:
    name: str
    version: str
    vendor: str
    key_path: str
    fields: tuple[FieldSpec, ...]
    dimensions_path: str | None
    dimension_fields: tuple[FieldSpec, ...]
    file: str
    competencies: dict = field(default_factory=dict)  # vendor dimension code or name -> competency code

    @classmethod
    def load(cls, path: Path) -> "MappingSpec":
        doc = load_yaml_checked(path, _SCHEMA)
        mapped = {f"candidate.{k}" for k in doc["candidate"]} | set(doc["result"])
        for name in MUST_MAP:
            if name not in mapped:
                raise ConfigError(str(path), name, "this canonical field is required and is not mapped")
        for name, allowed in (("status", STATUSES), ("recommendation", RECOMMENDATIONS)):
            values = (doc["result"].get(name) or {}).get("values", {})
            bad = [v for v in values.values() if v not in allowed]
            if bad:
                raise ConfigError(str(path), f"result.{name}.values", f"{bad[0]!r} is not one of {', '.join(allowed)}")
        where = str(path)
        fields = tuple(FieldSpec.parse(f"candidate.{k}", v, where) for k, v in doc["candidate"].items()) + tuple(
            FieldSpec.parse(k, v, where) for k, v in doc["result"].items())
        dims = doc.get("dimensions") or {}
        return cls(name=doc["mapping"], version=doc["version"], vendor=doc["vendor"], key_path=doc["key"],
                   fields=fields, dimensions_path=dims.get("path"),
                   dimension_fields=tuple(FieldSpec.parse(k, v, where, f"dimensions.fields.{k}")
                                          for k, v in dims.get("fields", {}).items()),
                   file=str(path), competencies={str(k): v for k, v in (doc.get("competencies") or {}).items()})

    def competency_of(self, code: str | None, name: str | None = None) -> str | None:
        """The group competency a vendor dimension belongs to (a rule on its code, else on its
        name), or None when no rule maps it: it is then kept under the vendor's code and flagged."""
        for key in (code, name):
            if key is not None and str(key) in self.competencies:
                return self.competencies[str(key)]
        return None

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever the spec's content changes, even if someone forgot to bump the version."""
        return hashlib.sha256(Path(self.file).read_bytes()).hexdigest()[:12]

    def masked_value(self, payload: dict, field_name: str) -> str:
        """The offending value of a field, as an error message may show it."""
        spec = next((f for f in self.fields if f.name == field_name), None)
        value = spec.extract(payload) if spec else self.key_of(payload) if field_name == "record.key" else None
        return mask_value(PII_KIND.get(field_name), value)

    def interview_content(self, payload: dict) -> dict:
        """The payload with only the values of the fields it maps as interview content kept (the
        position, times, scores, statuses, comments, dimensions) and every other value blanked: the
        candidate's, the interviewer, the links but for their scheme and host, and whatever the
        mapping does not read, which could be anything. The keys stay. What an artefact shared by
        many payloads may learn from (hiresync.privacy.payloads trains a compression dictionary on it)."""
        return _kept(payload, (), self._content_paths, self._dimension_paths, self._link_paths)

    @cached_property
    def _link_paths(self) -> frozenset[tuple[str, ...]]:
        return frozenset(f.parts for f in self.fields if f.parts and f.type == "url")

    @cached_property
    def _content_paths(self) -> frozenset[tuple[str, ...]]:
        return frozenset(f.parts for f in self.fields if f.parts and f.name not in NOT_CONTENT
                         and not f.name.startswith("candidate."))

    @cached_property
    def _dimension_paths(self) -> tuple[tuple[str, ...], frozenset[tuple[str, ...]]] | None:
        if not self.dimensions_path:
            return None
        return tuple(self.dimensions_path.split(".")), frozenset(f.parts for f in self.dimension_fields if f.parts)

    def key_of(self, payload: dict) -> str | None:
        key = get_path(payload, self.key_path)
        return None if key is None else str(key)

    # -- mapping ------------------------------------------------------------------------------
    def map(self, payload: dict) -> tuple[dict | None, list[Problem]]:
        """One payload -> (canonical record, []) or (None, problems). Never raises for bad data."""
        if not isinstance(payload, dict):  # one reason, not a NOT_NULL per field
            return None, [Problem("record", "NOT_AN_OBJECT", type(payload).__name__)]
        problems: list[Problem] = []
        candidate: dict[str, Any] = {}
        result: dict[str, Any] = {}
        for spec in self.fields:
            try:
                value = _normalise(spec, payload)
            except FieldError as err:
                problems.append(Problem(spec.name, err.rule, mask_value(PII_KIND.get(spec.name), spec.extract(payload))))
                continue
            if spec.name.startswith("candidate."):
                candidate[spec.name.removeprefix("candidate.")] = value
            elif spec.type == "score":
                result.update(overall_score=value[0], raw_score=value[1], score_scale=value[2])
            else:
                result[spec.name] = value
        dimensions = self._map_dimensions(payload, problems)
        if problems:
            return None, problems
        return {
            "vendor": self.vendor,
            "vendor_result_id": self.key_of(payload),
            "candidate": candidate,
            "result": result,
            "dimensions": dimensions,
            "mapping_version": self.version,
        }, []

    def _map_dimensions(self, payload: dict, problems: list[Problem]) -> list[dict]:
        if not self.dimensions_path:
            return []
        items = get_path(payload, self.dimensions_path) or []
        if not isinstance(items, list):
            problems.append(Problem("dimensions", "NOT_A_LIST", mask_value(None, type(items).__name__)))
            return []
        out = []
        for i, item in enumerate(items):
            dim: dict[str, Any] = {}
            for spec in self.dimension_fields:
                try:
                    value = _normalise(spec, item if isinstance(item, dict) else {})
                except FieldError as err:
                    problems.append(Problem(f"dimensions[{i}].{spec.name}", err.rule, mask_value(None, spec.extract(item))))
                    continue
                if spec.type == "score":
                    dim.update(score=value[0], raw_score=value[1], scale=value[2])
                else:
                    dim[spec.name] = value
            out.append(dim)
        return out


# -- normalisers: value in, canonical value out, or FieldError(rule) ------------------------------
def _normalise(spec: FieldSpec, payload: dict) -> Any:
    raw = spec.extract(payload)
    if raw is None:
        if spec.required:
            raise FieldError("NOT_NULL")
        return (None, None, None) if spec.type == "score" else None
    if isinstance(raw, float) and not math.isfinite(raw):
        raise FieldError("NAN")  # NaN/Infinity (JSON extensions some vendors send) is a value, not a missing one
    return spec.convert(spec, raw, payload)


def _national_id(spec: FieldSpec, raw: Any, payload: dict) -> str:
    value = identifiers.normalize_national_id(str(raw))
    if problem := identifiers.national_id_problem(value):
        raise FieldError(problem)
    age = identifiers.age_on(value, datetime.now(timezone.utc).date())
    if age is not None and age < MINIMUM_AGE:
        raise FieldError("MINOR")  # never loaded, never delivered: minors' data needs a guardian's consent
    return value


def _mobile(spec: FieldSpec, raw: Any, payload: dict) -> str:
    if (value := identifiers.normalize_mobile(str(raw))) is None:
        raise FieldError("MOBILE_FORMAT")
    return value


def _email(spec: FieldSpec, raw: Any, payload: dict) -> str:
    if (value := identifiers.normalize_email(str(raw))) is None:
        raise FieldError("EMAIL_FORMAT")
    return value


def _enum(spec: FieldSpec, raw: Any, payload: dict) -> Any:
    key = str(raw).strip()
    if key in spec.values:
        return spec.values[key]
    raise FieldError("ENUM")


_URL = re.compile(r"^https?://\S+$")


def _url(spec: FieldSpec, raw: Any, payload: dict) -> str:
    text = str(raw).strip()
    if not _URL.match(text):
        raise FieldError("URL_FORMAT")
    return text


def _unknown_type(spec: FieldSpec, raw: Any, payload: dict) -> Any:
    raise FieldError("UNKNOWN_TYPE")


_CONVERTERS: dict[str, Callable[[FieldSpec, Any, dict], Any]] = {
    "text": lambda spec, raw, payload: clean_text(raw),
    "free_text": lambda spec, raw, payload: clean_free_text(raw),
    "national_id": _national_id,
    "mobile": _mobile,
    "email": _email,
    "datetime": lambda spec, raw, payload: parse_datetime(raw, spec.timezone, spec.time_format).isoformat(),
    "score": lambda spec, raw, payload: normalise_score(raw, spec.scale_of(payload)),
    "enum": _enum,
    "url": _url,
    "number": lambda spec, raw, payload: _number(raw),
}


def clean_text(raw: Any) -> str:
    # NFKC folds full-width digits and letters (ＡＢＣ１２３) to ASCII (ASCII text needs no folding);
    # whitespace runs, the ideographic space included, become one space.
    text = raw if isinstance(raw, str) else str(raw)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split())


# Free text (AI comments, remarks): line breaks and full-width punctuation carry meaning in Chinese
# prose. Only full-width ASCII letters and digits fold; control characters other than the line
# break go; spaces collapse within a line; more than one blank line becomes one.
_FULLWIDTH_ALNUM = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                    for c in range(r[0], r[1] + 1)}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\ufeff]")
_BLANK_RUNS = re.compile(r"\n{3,}")


# What clean_free_text would change: whitespace other than a single inner space, control and
# zero-width characters, full-width letters and digits. Most comments hold none of it and are
# returned as they are (tests/test_mapping_properties.py checks the shortcut against the full path).
_FREE_TEXT_WORK = re.compile(r"[^\S ]|  |^ | $|[\x00-\x1f\x7f\u200b\ufeff\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def clean_free_text(raw: Any) -> str:
    text = raw if isinstance(raw, str) else str(raw)
    if not _FREE_TEXT_WORK.search(text) and unicodedata.is_normalized("NFC", text):
        return text
    return _clean_free_text(text)


def _clean_free_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_FULLWIDTH_ALNUM)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _CONTROL.sub("", text.replace("\t", " "))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def parse_datetime(raw: Any, assume_tz: str = "UTC", fmt: CursorFormat | None = None) -> datetime:
    """A vendor time -> aware UTC datetime. Naive times are in `assume_tz`.

    Without `fmt`: ISO-8601 text or epoch seconds. With it (the field's `format:`), exactly that
    format, read by the same code as the profile's cursor (connectors/rest/incremental.py)."""
    if fmt is not None:
        try:
            return fmt.parse(clean_text(raw) if isinstance(raw, str) else raw)
        except (ValueError, TypeError, OverflowError, OSError):
            raise FieldError("DATETIME") from None
    try:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw, tz=timezone.utc)
        dt = datetime.fromisoformat(clean_text(raw))
    except (ValueError, TypeError, OverflowError, OSError):
        raise FieldError("DATETIME") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(assume_tz))
    return dt.astimezone(timezone.utc)


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise FieldError("NUMBER")
    try:
        value = float(clean_text(raw).rstrip("%")) if isinstance(raw, str) else float(raw)
    except (ValueError, TypeError, OverflowError):
        raise FieldError("NUMBER") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise FieldError("NUMBER")
    return value


def normalise_score(raw: Any, scale: Any) -> tuple[float, float, float]:
    """(score on 0-100, raw score, raw scale). Accepts 85.5, "85.5", "4/5" and "85%"."""
    if isinstance(raw, str) and "/" in raw:
        num, _, den = raw.partition("/")
        value, scale_value = _number(num), _number(den)
    elif isinstance(raw, str) and raw.strip().endswith("%"):
        value, scale_value = _number(raw), 100.0
    else:
        value = _number(raw)
        try:
            scale_value = _number(scale)
        except FieldError:
            raise FieldError("SCALE") from None
    if scale_value <= 0:
        raise FieldError("SCALE")
    if not 0 <= value <= scale_value:
        raise FieldError("RANGE")
    return round(value / scale_value * 100, 2), value, scale_value


def content_hash(record: dict) -> str:
    """Stable hash of what a record says (not where or when it was read): decides 'unchanged'."""
    body = {k: record[k] for k in ("candidate", "result", "dimensions")}
    return hashlib.sha256(jsonfast.dumpb(body, sort_keys=True)).hexdigest()
