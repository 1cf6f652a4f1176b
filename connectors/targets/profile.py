"""Target profiles: what an integrator writes (YAML) to connect a system HireSync delivers to.

Like the vendor profiles: the JSON schema below is the reference for every key and a mistake is
reported as `file: key: problem`. `kind: sql` is the EHR's database (HIRESYNC_EHR_URL); `kind:
rest` is an HTTP API, either a batch endpoint (`upsert.mode: batch`, one POST carries many
records) or one request per record (`upsert.mode: record`, e.g. PUT by external key). The shape
of what a REST target receives is a mapping file (`mapping:`), not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from connectors.rest.profile import AUTH
from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError

_STR, _POS_INT = {"type": "string", "minLength": 1}, {"type": "integer", "minimum": 1}
_POS_NUM = {"type": "number", "exclusiveMinimum": 0}
_PATH = {"type": "string", "pattern": "^/"}

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["target", "kind", "recipient"],
    "properties": {
        "target": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "description": {"type": "string"},
        "kind": {"enum": ["sql", "rest"]},
        # The audience in policy.yaml `recipients:` whose data policy this target gets.
        "recipient": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "connection": {"type": "string", "description": "Airflow Connection id: host = base URL, login, password"},
        "mapping": {"type": "string", "description": "the target's mapping file (what each record looks like)"},
        "auth": AUTH,
        "upsert": {
            "type": "object",
            "additionalProperties": False,
            "required": ["mode", "method", "path"],
            "properties": {
                "mode": {"enum": ["batch", "record"]},
                "method": {"enum": ["POST", "PUT", "PATCH"]},
                "path": _PATH,  # `{field}` placeholders are filled from the shaped record (URL-quoted)
                "batch_size": _POS_INT,
                "idempotency_header": _STR,
                "items_field": _STR, "key_field": _STR, "record_field": _STR, "results_field": _STR,
                "ref_path": _STR,  # dotted path of the target's own id in a (per-item) response
            },
            # A POST is not idempotent by itself: without a key a retry could create a second record.
            "if": {"properties": {"method": {"const": "POST"}}},
            "then": {"required": ["idempotency_header"]},
        },
        "erase": {
            "type": "object",
            "additionalProperties": False,
            "required": ["method", "path"],
            "properties": {"method": {"enum": ["DELETE", "POST"]}, "path": _PATH},
        },
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"connect_timeout": _POS_NUM, "read_timeout": _POS_NUM},
        },
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "backoff_seconds": _POS_NUM,      # first retry after about this long, doubling each time
                "max_backoff_seconds": _POS_NUM,
                "max_retry_after_seconds": _POS_NUM,
                "lease_seconds": _POS_NUM,        # a claimed row is someone else's for this long
            },
        },
        "circuit": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"failure_threshold": _POS_INT, "open_seconds": _POS_NUM},
        },
    },
    "allOf": [{
        "if": {"properties": {"kind": {"const": "rest"}}},
        "then": {"required": ["connection", "mapping", "auth", "upsert"]},
    }],
}


@dataclass(frozen=True)
class TargetProfile:
    name: str
    kind: str
    recipient: str
    path: Path
    connection: str | None = None
    mapping: str | None = None
    auth: dict = field(default_factory=dict)
    upsert: dict = field(default_factory=dict)
    erase: dict | None = None
    connect_timeout: float = 5
    read_timeout: float = 30
    backoff_seconds: float = 5
    max_backoff_seconds: float = 900
    max_retry_after_seconds: float = 600
    lease_seconds: float = 300
    failure_threshold: int = 5
    open_seconds: float = 120

    @classmethod
    def load(cls, path: Path) -> "TargetProfile":
        doc = load_yaml_checked(path, SCHEMA)
        if doc["kind"] == "rest" and doc["upsert"]["mode"] == "record" and "{" not in doc["upsert"]["path"]:
            raise ConfigError(str(path), "upsert.path", "one request per record needs the record's key in the path, "
                                                        "e.g. /assessments/{externalKey}")
        limits, retry, circuit = doc.get("limits", {}), doc.get("retry", {}), doc.get("circuit", {})
        return cls(name=doc["target"], kind=doc["kind"], recipient=doc["recipient"], path=Path(path),
                   connection=doc.get("connection"), mapping=doc.get("mapping"), auth=doc.get("auth", {}),
                   upsert=doc.get("upsert", {}), erase=doc.get("erase"),
                   **{k: v for k, v in {**limits, **retry, **circuit}.items()})
