"""A target's mapping file: canonical delivery payload -> the record a target system takes.

    mapping: hrcloud
    version: 1.0.0
    record:                                   # nested objects as in the target's API
      externalKey: {path: result.result_key}
      assessment:
        status: {path: result.status, values: {passed: PASS, failed: FAIL}}
        maxScore: {const: 100}
        subResults: {each: dimensions, fields: {code: {path: code}, score: {path: score}}}

A leaf takes `path` (dotted, into {"candidate", "result", "dimensions"}) or `const`, optionally
`values` (a value map; unmapped values pass through) and `default`. A value that is absent (for
example dropped by the recipient's data policy) leaves its key out rather than sending null.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiresync.config.files import load_yaml_checked

_SCALAR = {"type": ["string", "integer", "number", "boolean", "null"]}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["mapping", "version", "record"],
    "properties": {
        "mapping": {"type": "string"},
        "version": {"type": "string"},
        "description": {"type": "string"},
        "record": {"$ref": "#/$defs/object"},
    },
    "$defs": {
        "leaf": {
            "type": "object", "additionalProperties": False,
            "properties": {"path": {"type": "string", "minLength": 1}, "const": _SCALAR,
                           "values": {"type": "object", "additionalProperties": _SCALAR}, "default": _SCALAR},
            "oneOf": [{"required": ["path"]}, {"required": ["const"]}],
        },
        "list": {
            "type": "object", "additionalProperties": False, "required": ["each", "fields"],
            "properties": {"each": {"type": "string"}, "fields": {"$ref": "#/$defs/object"}},
        },
        "node": {"if": {"anyOf": [{"required": ["path"]}, {"required": ["const"]}]},
                 "then": {"$ref": "#/$defs/leaf"},
                 "else": {"if": {"required": ["each"]}, "then": {"$ref": "#/$defs/list"},
                          "else": {"$ref": "#/$defs/object"}}},
        "object": {"type": "object", "minProperties": 1, "additionalProperties": {"$ref": "#/$defs/node"}},
    },
}

_ABSENT = object()


def dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return _ABSENT
        doc = doc[part]
    return doc


@dataclass(frozen=True)
class Shape:
    name: str
    version: str
    record: dict

    @classmethod
    def load(cls, path: Path) -> "Shape":
        doc = load_yaml_checked(path, SCHEMA)
        return cls(doc["mapping"], doc["version"], doc["record"])

    def render(self, payload: dict) -> dict:
        return _object(self.record, payload)


def _object(spec: dict, scope: dict) -> dict:
    out = {}
    for key, node in spec.items():
        value = _node(node, scope)
        if value is not _ABSENT:
            out[key] = value
    return out


def _node(node: dict, scope: dict) -> Any:
    if "const" in node:
        return node["const"]
    if "path" in node:
        value = dig(scope, node["path"])
        if value is _ABSENT or value is None:
            return node.get("default", _ABSENT if value is _ABSENT else None)
        values = node.get("values")
        return values.get(str(value), value) if values else value
    if "each" in node:
        items = dig(scope, node["each"])
        return [_object(node["fields"], item) for item in items] if isinstance(items, list) else _ABSENT
    return _object(node, scope)
