"""What every step needs, built from two references: the source name and the run id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property

from connectors.kinds import Profile, load_profile
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec
from hiresync.privacy.pii import Keyring
from hiresync.config.settings import Settings
from hiresync.config.sources import SourceConfig, get_source
from hiresync.ingest.staging import Staging
from hiresync.monitor.progress import Reporter


@dataclass
class RunContext:
    settings: Settings
    source: SourceConfig
    run_id: str
    # Who watches: Airflow's task log, the CLI's bar, or nobody (hiresync.monitor.progress).
    reporter: Reporter = field(default_factory=Reporter)

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
        return _ReportingStaging(self.settings.staging_dir, self.run_id, self.keys, self.settings.batch_size,
                                 report=self.progress)

    def progress(self, done: int, total: int | None = None, unit: str = "records", **counts) -> None:
        """Progress on long work, for a step to call as often as it likes (pages read, batches done):
        the reporter shows it at most every few seconds, with the rate."""
        self.reporter.advance(done, total, unit, counts)

    def transaction(self):
        return transaction(self.settings.hub_url)


class _ReportingStaging(Staging):
    """Staging that reports the run's raw records as they are written (extract) or as each batch of
    them is done (map and load read the raw batches in step with their other files), so those steps
    show progress without a call of their own; validate, which leaves some batches unopened to its
    helper, reports its own."""

    def __init__(self, *args, report, **kwargs):
        super().__init__(*args, **kwargs)
        self._report = report
        self.counts: dict[str, int] = {}  # what the writer adds to its progress (extract: pages read)

    def write_records(self, name: str, records):
        if name != "raw":
            return super().write_records(name, records)

        def counted():
            for n, record in enumerate(records, start=1):
                yield record
                if n % 500 == 0:
                    self._report(n, **self.counts)
        return super().write_records(name, counted())

    def read_batches(self, name: str, skip: int = 0, done: int = 0):
        """`done`: the records in the `skip` batches not read, for the progress count."""
        if name != "raw":
            yield from super().read_batches(name, skip)
            return
        total = self._total()
        for batches, batch in enumerate(super().read_batches(name, skip), start=skip + 1):
            yield batch  # the step works on it; progress counts it when the step asks for the next one
            done += len(batch)
            self._report(done, total, batches=batches)

    def _total(self) -> int | None:
        try:
            return int(self.read_json("manifest")["pulled"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def new_run_id(source: str) -> str:
    return f"{source}__cli__{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}"
