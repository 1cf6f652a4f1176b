"""What every step needs, built from two references: the source name and the run id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

from connectors.kinds import Profile, load_profile
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec
from hiresync.privacy.pii import Keyring
from hiresync.config.settings import Settings
from hiresync.config.sources import SourceConfig, get_source
from hiresync.ingest.staging import Staging


@dataclass
class RunContext:
    settings: Settings
    source: SourceConfig
    run_id: str

    @classmethod
    def open(cls, source: str, run_id: str, settings: Settings | None = None) -> "RunContext":
        settings = settings or Settings.from_env()
        return cls(settings, get_source(settings, source), run_id)

    @cached_property
    def keys(self) -> Keyring:
        from hiresync.privacy.keys import hub_keys  # checks the key against the hub before any step uses it

        return hub_keys(self.settings)

    @cached_property
    def profile(self) -> Profile:
        """RestProfile, WebhookProfile or FileDropProfile, by the file's `kind:`."""
        return load_profile(self.source.profile)

    @cached_property
    def mapping(self) -> MappingSpec:
        return MappingSpec.load(self.source.mapping)

    @cached_property
    def staging(self) -> Staging:
        return Staging(self.settings.staging_dir, self.run_id, self.keys, self.settings.batch_size)

    def transaction(self):
        return transaction(self.settings.hub_url)


def new_run_id(source: str) -> str:
    return f"{source}__cli__{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}"
