"""Which target a name means: its profile under connectors/profiles/targets/ and the connector
that talks to it (the EHR's SQL tables or a REST system). Shared by the outbox relay and the
workflow events, so neither has to import the other."""

from __future__ import annotations

from connectors.targets.base import TargetError
from connectors.targets.ehr_sql import EhrSqlTarget
from connectors.targets.profile import TargetProfile
from hiresync.errors import HireSyncError
from hiresync.hub.store import engine_for
from hiresync.config.settings import Settings

PROFILE_DIR = "connectors/profiles/targets"


def profile_for(name: str, settings: Settings) -> TargetProfile:
    path = settings.resolve(f"{PROFILE_DIR}/{name}.yaml")
    if not path.exists():
        raise HireSyncError(f"target {name!r} is not configured (no profile {PROFILE_DIR}/{name}.yaml)")
    return TargetProfile.load(path)


def target_for(name: str, settings: Settings, profile: TargetProfile | None = None):
    profile = profile or profile_for(name, settings)
    if profile.kind == "sql":
        return EhrSqlTarget(settings.ehr_url, engine=engine_for(settings.ehr_url))
    from connectors.targets.rest import RestTarget
    from connectors.targets.shape import Shape
    from hiresync.config.connections import get_connection

    try:
        return RestTarget(profile, get_connection(profile.connection), Shape.load(settings.resolve(profile.mapping)))
    except TargetError as exc:
        raise HireSyncError(str(exc)) from None
