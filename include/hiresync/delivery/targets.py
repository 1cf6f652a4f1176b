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


def competency_resolver(settings: Settings):
    """(vendor, dimension code, name) -> (competency code, Chinese name) by the vendor mappings'
    `competencies:` rules; a dimension no rule maps stays under "<vendor>:<code>"."""
    from hiresync.config.sources import load_sources
    from hiresync.mapping.competency import competency_key, load_model
    from hiresync.mapping.spec import MappingSpec

    model = load_model(settings)
    mappings = {}
    for src in load_sources(settings).values():
        try:
            m = MappingSpec.load(src.mapping)
        except HireSyncError:
            continue  # a broken mapping is reported by its own sync
        mappings.setdefault(m.vendor, m)

    def competency_of(vendor: str, code: str | None, name: str | None) -> tuple[str, str]:
        key = competency_key(mappings.get(vendor), vendor, code, name)
        return key, model.name_of(key)

    return competency_of


def target_for(name: str, settings: Settings, profile: TargetProfile | None = None):
    profile = profile or profile_for(name, settings)
    if profile.kind == "sql":
        from connectors.targets.shape import Shape

        shape = Shape.load(settings.resolve(profile.mapping)) if profile.mapping else None
        return EhrSqlTarget(settings.ehr_url, engine=engine_for(settings.ehr_url), shape=shape,
                            competency_of=competency_resolver(settings), time_zone=settings.timezone)
    from connectors.targets.rest import RestTarget
    from connectors.targets.shape import Shape
    from hiresync.config.connections import get_connection

    try:
        return RestTarget(profile, get_connection(profile.connection), Shape.load(settings.resolve(profile.mapping)))
    except TargetError as exc:
        raise HireSyncError(str(exc)) from None
