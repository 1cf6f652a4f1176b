"""sources.yaml: which vendors are synced, with which profile, mapping, schedule and targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError
from hiresync.config.settings import Settings

TARGETS = ("ehr", "grouphr", "hrcloud")  # each has a profile in connectors/profiles/targets/

_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sources"],
    "properties": {
        "sources": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["profile", "mapping"],
                "properties": {
                    "profile": {"type": "string"},
                    "mapping": {"type": "string"},
                    "schedule": {"type": ["string", "null"]},
                    "targets": {"type": "array", "items": {"enum": list(TARGETS)}, "uniqueItems": True},
                    "paused": {"type": "boolean"},
                    # Schema drift: freeze the source when more than this share of a batch fails.
                    "drift_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    # Smaller batches are not judged for drift: one bad record in three is not a schema change.
                    "drift_min_rows": {"type": "integer", "minimum": 1},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class SourceConfig:
    name: str
    profile: Path
    mapping: Path
    schedule: str | None
    targets: tuple[str, ...]
    paused: bool
    drift_threshold: float = 0.2
    drift_min_rows: int = 20


# Airflow's schedule presets; anything else must be a cron expression.
CRON_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly",
                "@annually", "@midnight")


def check_sources(path: Path, home: Path) -> dict:
    """sources.yaml read and checked: schema, each schedule (cron or preset), each profile and
    mapping file exists. Raises ConfigError (file: key: problem) at the first mistake; the DAG file
    calls this too, so a broken entry is one clear import error, not a traceback in Airflow."""
    doc = load_yaml_checked(path, _SCHEMA)
    for name, entry in doc["sources"].items():
        schedule = entry.get("schedule")
        if schedule is not None and not _valid_schedule(schedule):
            raise ConfigError(str(path), f"sources.{name}.schedule",
                              f"not a cron expression (5 fields: minute hour day month weekday) or one of "
                              f"{', '.join(CRON_PRESETS)}")
        for key in ("profile", "mapping"):
            file = Path(entry[key]) if Path(entry[key]).is_absolute() else home / entry[key]
            if not file.is_file():
                raise ConfigError(str(path), f"sources.{name}.{key}", f"no such file: {file}")
    return doc


def _valid_schedule(schedule: str) -> bool:
    if schedule.startswith("@"):
        return schedule in CRON_PRESETS
    from croniter import croniter  # what Airflow's cron timetables use

    return len(schedule.split()) == 5 and croniter.is_valid(schedule)


def load_sources(settings: Settings) -> dict[str, SourceConfig]:
    doc = check_sources(settings.sources_file, settings.home)
    return {
        name: SourceConfig(name=name, profile=settings.resolve(s["profile"]), mapping=settings.resolve(s["mapping"]),
                           schedule=s.get("schedule"), targets=tuple(s.get("targets", ["ehr"])),
                           paused=s.get("paused", False), drift_threshold=s.get("drift_threshold", 0.2),
                           drift_min_rows=s.get("drift_min_rows", 20))
        for name, s in doc["sources"].items()
    }


def get_source(settings: Settings, name: str) -> SourceConfig:
    sources = load_sources(settings)
    if name not in sources:
        raise ConfigError(str(settings.sources_file), f"sources.{name}",
                          f"no such source; configured: {', '.join(sorted(sources))}")
    return sources[name]
