"""The mapping rules that produced each canonical field, read from a mapping spec's YAML text.

Trace and explain read the verbatim spec stored in `mapping_versions` (what produced a record,
even after the file changed); OpenLineage's column lineage reads the current file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from hiresync.mapping.spec import PII_KIND


@dataclass(frozen=True)
class FieldRule:
    field: str                    # canonical name: "candidate.national_id", "overall_score", "dimensions.score"
    path: str | None              # where the value is in the vendor payload (None for a constant)
    type: str = "text"
    const: Any = None
    required: bool = False
    timezone: str | None = None
    format: str | None = None          # datetime: iso, epoch_s, epoch_ms or a strftime pattern
    scale: float | str | None = None   # a number, or the payload path holding the scale
    values: dict[str, Any] = field(default_factory=dict)
    pii: bool = False

    def describe(self) -> str:
        """One line a data engineer can read: where from, and what was done to it."""
        if self.path is None:
            return f"constant {self.const!r}"
        how = {"text": "text (NFKC, whitespace collapsed)",
               "free_text": "free text (line breaks and full-width punctuation kept)", "national_id": "resident ID (GB 11643 checked)",
               "mobile": "mobile (E.164)", "email": "email (lower-cased)", "url": "URL", "number": "number"}
        if self.type == "datetime":
            what = (f"datetime ({self.format or 'ISO-8601 or epoch seconds'}) to UTC"
                    f" (naive times read as {self.timezone or 'UTC'})")
        elif self.type == "score":
            scale = f"payload {self.scale}" if isinstance(self.scale, str) else (self.scale or 100)
            what = f"score: raw / scale ({scale}) x 100 -> 0-100"
        elif self.type == "enum":
            what = "value map " + ", ".join(f"{k!r} -> {v!r}" for k, v in self.values.items())
        else:
            what = how.get(self.type, self.type)
        return f"{self.path}: {what}" + ("; required" if self.required else "") + ("; personal data, stored encrypted" if self.pii else "")

    def as_dict(self) -> dict:
        doc = {k: v for k, v in asdict(self).items() if v not in (None, {}, False) or k in ("path", "pii")}
        return doc | {"rule": self.describe()}


@dataclass(frozen=True)
class MappingRules:
    mapping: str
    version: str
    vendor: str
    key_path: str
    fields: dict[str, FieldRule]            # canonical field -> rule
    dimensions_path: str | None = None       # the list in the payload that dimension rules apply to

    @classmethod
    def from_yaml(cls, text: str) -> "MappingRules":
        doc = yaml.safe_load(text) or {}
        rules: dict[str, FieldRule] = {}
        for section, prefix in (("candidate", "candidate."), ("result", "")):
            for name, spec in (doc.get(section) or {}).items():
                rules[prefix + name] = _rule(prefix + name, spec)
        dims = doc.get("dimensions") or {}
        for name, spec in (dims.get("fields") or {}).items():
            rules[f"dimensions.{name}"] = _rule(f"dimensions.{name}", spec)
        return cls(mapping=str(doc.get("mapping")), version=str(doc.get("version")), vendor=str(doc.get("vendor")),
                   key_path=str(doc.get("key")), fields=rules, dimensions_path=dims.get("path"))

    def vendor_path(self, rule: FieldRule) -> str | None:
        """The rule's path from the payload root (dimension paths are relative to each list item)."""
        if rule.path is None:
            return None
        if rule.field.startswith("dimensions.") and self.dimensions_path:
            return f"{self.dimensions_path}[].{rule.path}"
        return rule.path


def _rule(name: str, spec: dict) -> FieldRule:
    scale = spec.get("scale")
    return FieldRule(field=name, path=spec.get("path"), type=spec.get("type", "text"), const=spec.get("const"),
                     required=bool(spec.get("required", False)), timezone=spec.get("timezone"), format=spec.get("format"),
                     scale=scale["path"] if isinstance(scale, dict) else scale,
                     values={str(k): v for k, v in (spec.get("values") or {}).items()},
                     pii=name in PII_KIND)
