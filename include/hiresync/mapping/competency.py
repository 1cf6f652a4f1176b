"""The group's competency model (competencies.yaml at the project root) and which vendor
dimensions map onto it (each vendor mapping's `competencies:` rules).

A dimension no rule maps is kept under the vendor's own code, `<vendor>:<code>`, so it is never
lost, and `hiresync connector check` and `hiresync status` flag it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hiresync.config.files import load_yaml_checked
from hiresync.config.settings import Settings
from hiresync.errors import ConfigError
from hiresync.mapping.spec import MappingSpec

FILE = "competencies.yaml"

_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["competencies"],
    "properties": {"competencies": {"type": "array", "minItems": 1, "items": {
        "type": "object", "additionalProperties": False, "required": ["code", "name"],
        "properties": {"code": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
                       "name": {"type": "string", "minLength": 1}, "description": {"type": "string"}}}}},
}


@dataclass(frozen=True)
class Competency:
    code: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class CompetencyModel:
    competencies: dict[str, Competency]

    @classmethod
    def load(cls, path: Path) -> "CompetencyModel":
        doc = load_yaml_checked(path, _SCHEMA)
        out: dict[str, Competency] = {}
        for i, c in enumerate(doc["competencies"]):
            if c["code"] in out:
                raise ConfigError(str(path), f"competencies[{i}].code", "each code appears once")
            out[c["code"]] = Competency(c["code"], c["name"], c.get("description", ""))
        return cls(out)

    def name_of(self, code: str) -> str:
        """The Chinese name HR reads; an unmapped vendor code shows as itself."""
        c = self.competencies.get(code)
        return c.name if c else code

    def check_mapping(self, mapping: MappingSpec) -> None:
        """Every rule of a mapping must point at a competency of the model."""
        for key, target in mapping.competencies.items():
            if target not in self.competencies:
                raise ConfigError(mapping.file, f"competencies.{key}",
                                  f"{target!r} is not a competency code in {FILE}")


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> CompetencyModel:
    return CompetencyModel.load(Path(path))


def load_model(settings: Settings) -> CompetencyModel:
    path = settings.resolve(FILE)
    if not path.exists():
        raise ConfigError(str(path), "competencies", "the group's competency model file is missing")
    return _load(str(path), path.stat().st_mtime)


def competency_key(mapping: MappingSpec | None, vendor: str, code: str | None, name: str | None = None) -> str:
    """The competency code of a dimension, or `<vendor>:<code>` when no rule maps it."""
    found = mapping.competency_of(code, name) if mapping else None
    return found or f"{vendor}:{code}"


def unmapped(mapping: MappingSpec, dimensions) -> list[str]:
    """The vendor codes among (code, name) pairs that no rule maps, sorted, each once."""
    return sorted({str(code) for code, name in dimensions if mapping.competency_of(code, name) is None})
