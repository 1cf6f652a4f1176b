"""The webhook profile (`kind: webhook`): how a push vendor signs its deliveries and where its
replay endpoint is. The signing secret is the password of `connection`; the replay endpoint is an
ordinary REST profile (`kind: rest`, its own connection and auth), so paging, retries and the
overlap window work as for any polled vendor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.rest.profile import RestProfile
from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError

_HEADER = {"type": "string", "pattern": r"^[A-Za-z0-9-]+$"}

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "kind", "connection", "signature"],
    "properties": {
        "source": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "description": {"type": "string"},
        "kind": {"const": "webhook"},
        "connection": {"type": "string", "description": "Airflow Connection id; password = signing secret"},
        "signature": {
            "type": "object",
            "additionalProperties": False,
            "required": ["delivery_header", "timestamp_header", "signature_header"],
            "properties": {
                "algorithm": {"enum": ["hmac_sha256"]},
                "delivery_header": _HEADER,
                "timestamp_header": _HEADER,
                "signature_header": _HEADER,
                "prefix": {"type": "string"},
                "tolerance_seconds": {"type": "integer", "minimum": 1, "maximum": 3600},
            },
        },
        "max_body_bytes": {"type": "integer", "minimum": 1024},
        "delivery_id_field": {"type": "string", "minLength": 1,
                              "description": "dotted path of the body field that must equal the delivery header "
                                             "(default: replay.delivery_id_field)"},
        "replay": {
            "type": "object",
            "additionalProperties": False,
            "required": ["profile", "delivery_id_field"],
            "properties": {
                "profile": {"type": "string", "description": "a kind: rest profile, relative to this file"},
                "delivery_id_field": {"type": "string", "minLength": 1},
            },
        },
    },
}


@dataclass(frozen=True)
class WebhookProfile:
    source: str
    file: str
    connection: str
    delivery_header: str
    timestamp_header: str
    signature_header: str
    prefix: str
    tolerance_seconds: int
    max_body_bytes: int
    replay: RestProfile | None
    replay_id_field: str | None
    delivery_id_field: str = ""  # the signed body's field that must equal the delivery header
    kind: str = "webhook"

    @classmethod
    def load(cls, path: Path) -> "WebhookProfile":
        doc = load_yaml_checked(path, SCHEMA)
        sig, replay = doc["signature"], doc.get("replay")
        rest = None
        if replay:
            rest = RestProfile.load(Path(path).parent / replay["profile"])
            if rest.source != doc["source"]:
                raise ConfigError(str(path), "replay.profile",
                                  f"{rest.file} is for source {rest.source!r}, not {doc['source']!r}")
        # The signature covers the body, not the delivery header: without a body field to bind the
        # id to, one captured delivery re-sent under other ids would make the real ones "duplicates".
        id_field = doc.get("delivery_id_field") or (replay or {}).get("delivery_id_field")
        if not id_field:
            raise ConfigError(str(path), "delivery_id_field",
                              "required: the body field that carries the delivery id (bound to the signature)")
        return cls(source=doc["source"], file=str(path), connection=doc["connection"],
                   delivery_header=sig["delivery_header"], timestamp_header=sig["timestamp_header"],
                   signature_header=sig["signature_header"], prefix=sig.get("prefix", ""),
                   tolerance_seconds=sig.get("tolerance_seconds", 300),
                   max_body_bytes=doc.get("max_body_bytes", 1024 * 1024),
                   replay=rest, replay_id_field=replay["delivery_id_field"] if replay else None,
                   delivery_id_field=id_field)
