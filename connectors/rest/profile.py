"""The REST source profile: what an integrator writes (YAML) to connect a vendor API.

In the manner of Airbyte's declarative manifests and dlt's rest_api source: auth, paginator,
record selector, envelope, incremental cursor and limits are plain configuration, each concern a
small class chosen by its `type:`. The JSON schema below is the reference for every key; the
README's "Add a vendor" section documents it for integrators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.rest.incremental import NAMED_FORMATS
from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError


def _variants(**variants: dict) -> dict:
    """A `type:`-discriminated object: each type has its own keys, and an unknown key, a missing
    key or an unknown type is reported at its own path (oneOf would report "not valid under any")."""
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(variants)}},
        "allOf": [
            {"if": {"required": ["type"], "properties": {"type": {"const": name}}},
             "then": {"additionalProperties": False, "required": spec.get("required", []),
                      "properties": {"type": {}, **spec.get("properties", {})}}}
            for name, spec in variants.items()
        ],
    }


_STR, _POS_INT, _NUM = {"type": "string", "minLength": 1}, {"type": "integer", "minimum": 1}, {"type": "number", "minimum": 0}
_SCALAR = {"type": ["string", "integer", "number", "boolean"]}

AUTH = _variants(
    api_key={"required": ["name"], "properties": {
        "name": _STR, "in": {"enum": ["header", "query"]}, "prefix": {"type": "string"}}},
    basic={},
    bearer={},
    oauth2_client_credentials={"required": ["token_path"], "properties": {
        "token_path": _STR, "scope": _STR, "refresh_margin_seconds": _NUM}},
    signed={"properties": {
        "algorithm": {"enum": ["hmac_sha256", "md5"]},
        "app_key_param": _STR, "timestamp_param": _STR, "timestamp_unit": {"enum": ["s", "ms"]},
        "nonce_param": _STR, "sign_param": _STR, "uppercase": {"type": "boolean"}}},
)

PAGINATOR = _variants(
    cursor={"required": ["cursor_path", "cursor_param"], "properties": {"cursor_path": _STR, "cursor_param": _STR}},
    next_url={"required": ["next_url_path"], "properties": {"next_url_path": _STR}},
    link_header={},
    page_number={"required": ["page_param", "page_size"], "properties": {
        "page_param": _STR, "size_param": _STR, "page_size": _POS_INT,
        "start_page": {"type": "integer", "minimum": 0}, "total_path": _STR}},
    offset={"required": ["offset_param", "limit_param", "limit"], "properties": {
        "offset_param": _STR, "limit_param": _STR, "limit": _POS_INT, "total_path": _STR}},
)

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "kind", "connection", "auth", "stream"],
    "properties": {
        "source": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "description": {"type": "string"},
        "kind": {"const": "rest"},
        "connection": {"type": "string", "description": "Airflow Connection id: host, login, password"},
        "base_url": {"type": "string", "description": "used when the connection has no host"},
        "auth": AUTH,
        "stream": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path", "record_selector", "paginator", "incremental"],
            "properties": {
                "path": {"type": "string", "pattern": "^/"},
                "params": {"type": "object", "additionalProperties": _SCALAR},
                "record_selector": {"type": "string", "description": "dotted path to the list of records"},
                "envelope": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["code_path"],
                    "properties": {
                        "code_path": _STR,
                        "success": {"type": "array", "minItems": 1, "items": _SCALAR},
                        "message_path": _STR,
                        "auth_codes": {"type": "array", "items": _SCALAR},
                        "retry_codes": {"type": "array", "items": _SCALAR},
                    },
                },
                "paginator": PAGINATOR,
                "incremental": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["cursor_field", "param", "start"],
                    "dependentRequired": {"seek": ["tie_breaker"]},
                    "properties": {
                        "cursor_field": _STR,
                        "param": _STR,
                        "format": _STR,
                        "timezone": _STR,
                        "start": {"type": "string"},
                        "overlap_seconds": _NUM,
                        "tie_breaker": _STR,
                        "seek": {"type": "boolean"},
                        "future_tolerance_seconds": _NUM,
                    },
                },
            },
        },
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "connect_timeout": {"type": "number", "exclusiveMinimum": 0},
                "read_timeout": {"type": "number", "exclusiveMinimum": 0},
                "max_retries": {"type": "integer", "minimum": 0},
                "backoff_factor": _NUM,
                "max_retry_after": _NUM,
                "requests_per_minute": {"type": "number", "exclusiveMinimum": 0},
                "max_depth": {"type": "integer", "minimum": 2},
                "max_field_chars": {"type": "integer", "minimum": 1},
            },
        },
    },
}

SEEKABLE = ("page_number", "offset")
# A cursor this far ahead of the clock is a vendor's mistake, not data: it would carry the watermark
# past every later change. Nesting and field sizes beyond these are quarantined, not loaded.
DEFAULT_FUTURE_TOLERANCE = 3600
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_FIELD_CHARS = 1_000_000


@dataclass(frozen=True)
class RestProfile:
    source: str
    file: str
    connection: str
    base_url: str | None
    auth: dict
    path: str
    params: dict
    record_selector: str
    envelope: dict | None
    paginator: dict
    cursor_field: str
    cursor_param: str
    cursor_format: str
    cursor_timezone: str
    tie_breaker: str | None
    seek: bool
    start: datetime
    overlap: timedelta
    future_tolerance: timedelta
    connect_timeout: float
    read_timeout: float
    max_retries: int
    backoff_factor: float
    max_retry_after: float
    requests_per_minute: float | None
    max_depth: int
    max_field_chars: int

    @classmethod
    def load(cls, path: Path) -> "RestProfile":
        doc = load_yaml_checked(path, SCHEMA)
        stream, inc, limits = doc["stream"], doc["stream"]["incremental"], doc.get("limits", {})
        where = str(path)
        try:
            start = datetime.fromisoformat(inc["start"])
        except ValueError:
            raise ConfigError(where, "stream.incremental.start", "not an ISO-8601 date-time") from None
        if start.tzinfo is None:
            raise ConfigError(where, "stream.incremental.start", "needs a timezone offset, e.g. +08:00")
        fmt = inc.get("format", "iso")
        if fmt not in NAMED_FORMATS and "%" not in fmt:
            raise ConfigError(where, "stream.incremental.format",
                              f"{fmt!r} is neither one of {', '.join(NAMED_FORMATS)} nor a strftime format like '%Y-%m-%d %H:%M:%S'")
        tz = inc.get("timezone", "UTC")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(where, "stream.incremental.timezone", f"{tz!r} is not an IANA timezone like Asia/Shanghai") from None
        if inc.get("seek") and stream["paginator"]["type"] not in SEEKABLE:
            raise ConfigError(where, "stream.incremental.seek",
                              f"only works with the {' or '.join(SEEKABLE)} paginator (the others carry their own position)")
        return cls(
            source=doc["source"], file=where, connection=doc["connection"], base_url=doc.get("base_url"),
            auth=doc["auth"], path=stream["path"], params=stream.get("params", {}),
            record_selector=stream["record_selector"], envelope=stream.get("envelope"), paginator=stream["paginator"],
            cursor_field=inc["cursor_field"], cursor_param=inc["param"], cursor_format=fmt, cursor_timezone=tz,
            tie_breaker=inc.get("tie_breaker"), seek=inc.get("seek", False), start=start,
            overlap=timedelta(seconds=inc.get("overlap_seconds", 300)),
            future_tolerance=timedelta(seconds=inc.get("future_tolerance_seconds", DEFAULT_FUTURE_TOLERANCE)),
            connect_timeout=limits.get("connect_timeout", 5), read_timeout=limits.get("read_timeout", 30),
            max_retries=limits.get("max_retries", 4), backoff_factor=limits.get("backoff_factor", 0.5),
            max_retry_after=limits.get("max_retry_after", 120),
            requests_per_minute=limits.get("requests_per_minute"),
            max_depth=limits.get("max_depth", DEFAULT_MAX_DEPTH),
            max_field_chars=limits.get("max_field_chars", DEFAULT_MAX_FIELD_CHARS),
        )
