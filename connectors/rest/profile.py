"""The REST source profile: what an integrator writes (YAML) to connect a vendor API.

In the manner of Airbyte's declarative manifests and dlt's rest_api source: auth, paginator,
record selector and incremental cursor are plain configuration, each handled by a small class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hiresync.config_files import load_yaml_checked
from hiresync.errors import ConfigError

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
        "auth": {
            "type": "object",
            "required": ["type"],
            "oneOf": [
                {"additionalProperties": False,
                 "properties": {"type": {"const": "oauth2_client_credentials"}, "token_path": {"type": "string"},
                                "scope": {"type": "string"}, "refresh_margin_seconds": {"type": "number", "minimum": 0}},
                 "required": ["type", "token_path"]},
                {"additionalProperties": False,
                 "properties": {"type": {"const": "bearer"}}},
            ],
        },
        "stream": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path", "record_selector", "paginator", "incremental"],
            "properties": {
                "path": {"type": "string", "pattern": "^/"},
                "params": {"type": "object"},
                "record_selector": {"type": "string", "description": "dotted path to the list of records"},
                "paginator": {
                    "type": "object",
                    "oneOf": [
                        {"additionalProperties": False, "required": ["type", "cursor_path", "cursor_param"],
                         "properties": {"type": {"const": "cursor"}, "cursor_path": {"type": "string"},
                                        "cursor_param": {"type": "string"}}},
                    ],
                },
                "incremental": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["cursor_field", "param", "start"],
                    "properties": {
                        "cursor_field": {"type": "string"},
                        "param": {"type": "string"},
                        "start": {"type": "string", "format": "date-time"},
                        "overlap_seconds": {"type": "number", "minimum": 0},
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
                "backoff_factor": {"type": "number", "minimum": 0},
            },
        },
    },
}


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
    paginator: dict
    cursor_field: str
    cursor_param: str
    start: datetime
    overlap: timedelta
    connect_timeout: float
    read_timeout: float
    max_retries: int
    backoff_factor: float

    @classmethod
    def load(cls, path: Path) -> "RestProfile":
        doc = load_yaml_checked(path, SCHEMA)
        stream, inc, limits = doc["stream"], doc["stream"]["incremental"], doc.get("limits", {})
        try:
            start = datetime.fromisoformat(inc["start"])
        except ValueError:
            raise ConfigError(str(path), "stream.incremental.start", "not an ISO-8601 date-time") from None
        if start.tzinfo is None:
            raise ConfigError(str(path), "stream.incremental.start", "needs a timezone offset, e.g. +08:00")
        return cls(
            source=doc["source"], file=str(path), connection=doc["connection"], base_url=doc.get("base_url"),
            auth=doc["auth"], path=stream["path"], params=stream.get("params", {}),
            record_selector=stream["record_selector"], paginator=stream["paginator"],
            cursor_field=inc["cursor_field"], cursor_param=inc["param"], start=start,
            overlap=timedelta(seconds=inc.get("overlap_seconds", 300)),
            connect_timeout=limits.get("connect_timeout", 5), read_timeout=limits.get("read_timeout", 30),
            max_retries=limits.get("max_retries", 4), backoff_factor=limits.get("backoff_factor", 0.5),
        )
