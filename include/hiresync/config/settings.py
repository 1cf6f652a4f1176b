"""Where things live. Everything is overridable by environment variables so that Airflow
workers, the CLI and the tests agree without passing paths around."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Settings:
    home: Path
    var_dir: Path
    hub_url: str
    ehr_url: str
    key_file: Path
    sources_file: Path
    policy_file: Path
    # Records per micro-batch through validate, map and load: memory is bounded by this, not by the run.
    # 2,000 keeps a run under 400 MB; larger batches spread Great Expectations' fixed cost per
    # validation (a few tenths of a second) over more rows, at about 50 MB per extra 1,000.
    batch_size: int = 2000
    # A run with at least this many rows to load is delivered by a second process while it loads,
    # and a deliver step with this many rows due relays them with two (hiresync.delivery.beside);
    # 0 never starts one. Smaller runs would feel the process start.
    relay_beside_rows: int = 10_000
    # A run with at least this many rows has part of its batches mapped by a second process while
    # the map step maps the rest (hiresync.pipeline.map_beside); 0 never starts one.
    map_beside_rows: int = 10_000
    # The same for the validate step: a second process prepares part of its batches for the raw
    # suite (hiresync.pipeline.validate_beside); 0 never starts one.
    validate_beside_rows: int = 10_000
    # The group's time zone: what the EHR and the HR report show interview times in (beside UTC).
    timezone: str = "Asia/Shanghai"

    @property
    def staging_dir(self) -> Path:
        return self.var_dir / "staging"

    @property
    def lineage_file(self) -> Path:
        return self.var_dir / "lineage" / "openlineage.ndjson"

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get("HIRESYNC_HOME", _REPO_ROOT))
        var_dir = Path(os.environ.get("HIRESYNC_VAR", home / "var"))
        return cls(
            home=home,
            var_dir=var_dir,
            hub_url=os.environ.get("HIRESYNC_HUB_URL", f"sqlite:///{var_dir / 'hub.db'}"),
            ehr_url=os.environ.get("HIRESYNC_EHR_URL", f"sqlite:///{var_dir / 'ehr.db'}"),
            key_file=Path(os.environ.get("HIRESYNC_KEY_FILE", var_dir / "keys.json")),
            sources_file=Path(os.environ.get("HIRESYNC_SOURCES", home / "sources.yaml")),
            policy_file=Path(os.environ.get("HIRESYNC_POLICY", home / "policy.yaml")),
            batch_size=_positive_int("HIRESYNC_BATCH_SIZE", 2000),
            relay_beside_rows=_whole_number("HIRESYNC_RELAY_BESIDE_ROWS", 10_000),
            map_beside_rows=_whole_number("HIRESYNC_MAP_BESIDE_ROWS", 10_000),
            validate_beside_rows=_whole_number("HIRESYNC_VALIDATE_BESIDE_ROWS", 10_000),
            timezone=_time_zone(os.environ.get("HIRESYNC_TIMEZONE") or "Asia/Shanghai"),
        )

    def resolve(self, relative: str | Path) -> Path:
        """Paths in config files are relative to the project home."""
        p = Path(relative)
        return p if p.is_absolute() else self.home / p


def _time_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"HIRESYNC_TIMEZONE must be an IANA time zone such as Asia/Shanghai, got {name!r}") from None
    return name


def _positive_int(name: str, default: int) -> int:
    return _whole_number(name, default, least=1)


def _whole_number(name: str, default: int, least: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < least:
        raise ValueError(f"{name} must be a {'positive ' if least else ''}whole number, got {raw!r}")
    return int(raw)


_SECRET_PARAM = ("pass", "pwd", "secret", "token", "key", "credential", "auth")


def safe_url(url: str) -> str:
    """A database URL as it may be shown: the password hidden, in the user info and in the query
    (`?password=`, `?sslpassword=`, `?token=`...)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - an unparseable URL is not shown at all: it may hold anything
        return "<a database URL that cannot be parsed>"
    if u.query:
        u = u.set(query={k: ("***" if any(s in k.lower() for s in _SECRET_PARAM) else v) for k, v in u.query.items()})
    return u.render_as_string(hide_password=True)
