"""`hiresync connector check <source>`: acceptance checks of a profile + mapping against the live
vendor (or its simulator) before the source is enabled.

Reads only: nothing is staged, loaded or delivered, and the watermark is not touched. The report
holds counts, field names and rules, never a record value (the records are candidates' data).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from connectors.errors import SourceAuthError, SourceError
from connectors.records import get_path
from connectors.rest.profile import RestProfile
from connectors.rest.source import RestSource
from connectors.webhook.profile import WebhookProfile
from hiresync.config.connections import get_connection
from hiresync.errors import HireSyncError
from hiresync.mapping.competency import load_model, unmapped
from hiresync.mapping.spec import MappingSpec
from hiresync.pipeline.context import RunContext
from hiresync.pipeline.extract import payload_hash
from hiresync.config.settings import Settings

FAR_FUTURE = timedelta(days=3650)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass" | "fail" | "skip"
    detail: str


def check_source(source: str, settings: Settings, max_fail_share: float | None = None) -> list[Check]:
    """`max_fail_share`: a field failing on more than this share of the sampled records fails the
    check (default: the source's drift_threshold, above which the first sync would freeze)."""
    checks: list[Check] = []
    try:
        ctx = RunContext.open(source, "connector-check", settings)
        profile, mapping = ctx.profile, ctx.mapping
        if isinstance(profile, WebhookProfile):
            if profile.replay is None:
                return [Check("configuration", "skip", f"{source} only pushes (webhooks) and has no replay endpoint "
                                                       "to read; check it by sending a signed test delivery")]
            profile = profile.replay  # what can be read of a push vendor: its replay endpoint
        elif not isinstance(profile, RestProfile):
            return [Check("configuration", "skip", f"{source} is a {profile.kind} source; connector check reads "
                                                   "vendor APIs (try `hiresync mapping test` on a sample file)")]
        rest = RestSource(profile, get_connection(profile.connection))
    except (HireSyncError, SourceError) as exc:
        return [Check("configuration", "fail", str(exc))]
    checks.append(Check("configuration", "pass",
                        f"profile {ctx.source.profile.name}, mapping {mapping.name} {mapping.version}, "
                        f"auth {profile.auth['type']}, paginator {profile.paginator['type']}"))

    request = f"GET {profile.path}"
    try:
        first = _first_page(rest, profile.start)
    except SourceAuthError as exc:
        return checks + [Check("credentials", "fail", exc.cause), _skipped("one page reads")]
    except SourceError as exc:
        return checks + [Check("credentials", "skip", "the vendor did not answer"),
                         Check("one page reads", "fail", exc.cause)]
    checks.append(Check("credentials", "pass", f"{profile.auth['type']} accepted by the vendor"))
    checks.append(Check("one page reads", "pass", f"{len(first)} records from {request} since {profile.start.isoformat()}"))
    share = ctx.source.drift_threshold if max_fail_share is None else max_fail_share
    checks.append(_mapping_check(first, mapping, rest, share))
    checks.append(_absent_paths_check(first, mapping))
    checks.append(_competency_check(first, mapping, settings))

    try:
        future = datetime.now(timezone.utc) + FAR_FUTURE
        later = _first_page(rest, future)
        checks.append(Check("far-future watermark", "pass" if not later else "fail",
                            f"since {future.date()}: " + ("no records" if not later else
                                                          f"{len(later)} records; the vendor ignores {profile.cursor_param!r} "
                                                          "or the format, so every run would re-read everything")))
        again = _first_page(rest, profile.start)
        same = _fingerprint(first, mapping) == _fingerprint(again, mapping)
        checks.append(Check("two reads agree", "pass" if same else "fail",
                            f"the first page twice: {len(first)} and {len(again)} records, "
                            + ("same keys, order and content" if same else "different (unstable order or paging)")))
    except SourceError as exc:
        checks.append(Check("incremental reads", "fail", exc.cause))
    return checks


def passed(checks: list[Check], strict: bool = False) -> bool:
    """No check failed; with `strict`, no check warned either."""
    return all(c.status != "fail" and not (strict and c.status == "warn") for c in checks)


def render(source: str, checks: list[Check], strict: bool = False) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"connector check {source}"]
    lines += [f"  {c.status.upper():<4}  {c.name:<{width}}  {c.detail}" for c in checks]
    tally = Counter(c.status for c in checks)
    lines.append(f"result: {'PASS' if passed(checks, strict) else 'FAIL'} "
                 f"({', '.join(f'{n} {s}ed' if s != 'skip' else f'{n} skipped' for s, n in sorted(tally.items()))})")
    return "\n".join(lines)


def as_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]


def _first_page(rest: RestSource, since: datetime) -> list[dict]:
    return next(iter(rest.pages(since)), [])


def _mapping_check(records: list[dict], mapping: MappingSpec, rest: RestSource, max_share: float) -> Check:
    if not records:
        return Check("records map", "skip", "no records to map since the profile's start")
    problems: Counter[tuple[str, str]] = Counter()
    by_field: Counter[str] = Counter()  # records failing on each field, whatever the rule
    mapped = 0
    for payload in records:
        record, found = mapping.map(payload)
        mapped += record is not None
        problems.update({(p.field, p.rule) for p in found})
        by_field.update({p.field for p in found})
    no_key = sum(1 for p in records if mapping.key_of(p) is None)
    no_cursor = sum(1 for p in records if rest.cursor_of(p) is None)
    detail = f"{mapped} of {len(records)} map"
    if problems:
        detail += "; problems: " + ", ".join(f"{f} {r} {n}" for (f, r), n in problems.most_common(6))
    # A field failing on every record is a mapping or profile mistake, not a few bad records.
    everywhere = [f"{f} {r}" for (f, r), n in problems.items() if n == len(records) and len(records) > 1]
    # A field failing on a large share (a value-map typo) would freeze the first sync (drift).
    widespread = [f"{f} {'/'.join(sorted(r for (pf, r) in problems if pf == f))} fails on {n} of {len(records)}"
                  for f, n in by_field.most_common() if n / len(records) > max_share and n < len(records)]
    failures = []
    if mapped == 0:
        failures.append("no record maps")
    if everywhere:
        failures.append(f"fails on every record: {', '.join(everywhere)}")
    if widespread and len(records) > 1:
        failures.append(f"more than {max_share:.0%} of the records fail: {', '.join(widespread)}")
    if no_key:
        failures.append(f"{no_key} records have no key at {mapping.key_path!r}")
    if no_cursor:
        failures.append(f"{no_cursor} records have no readable cursor at {rest.profile.cursor_field!r} "
                        f"(format {rest.profile.cursor_format!r}); the watermark cannot follow them")
    return Check("records map", "fail" if failures else "pass",
                 detail + ("; " + "; ".join(failures) if failures else ""))


def _absent_paths_check(records: list[dict], mapping: MappingSpec) -> Check:
    """An optional path that no sampled record has is most likely a typo (`e_mail`, `dimension`):
    the field would stay empty for every candidate. A warning; `--strict` makes it a failure."""
    objects = [r for r in records if isinstance(r, dict)]
    if not objects:
        return Check("optional paths", "skip", "no records to look at")
    absent = [f"{f.name} ({f.path})" for f in mapping.fields
              if f.path and not f.required and all(f.extract(r) is None for r in objects)]
    if mapping.dimensions_path:
        lists = [get_path(r, mapping.dimensions_path) for r in objects]
        items = [i for lst in lists if isinstance(lst, list) for i in lst if isinstance(i, dict)]
        if all(lst is None for lst in lists):
            absent.append(f"dimensions ({mapping.dimensions_path})")
        elif items:
            absent += [f"dimensions.{f.name} ({mapping.dimensions_path}[].{f.path})" for f in mapping.dimension_fields
                       if f.path and not f.required and all(f.extract(i) is None for i in items)]
    if not absent:
        return Check("optional paths", "pass", f"every mapped path is present in some of the {len(objects)} records")
    return Check("optional paths", "warn", f"absent from all {len(objects)} records (a typo?): {', '.join(absent)}")


def _competency_check(records: list[dict], mapping: MappingSpec, settings: Settings) -> Check:
    """Each sampled dimension maps onto the group's competency model (competencies.yaml). A dimension
    no rule maps is kept under the vendor's code, but it cannot be compared across vendors: a warning."""
    try:
        model = load_model(settings)
        model.check_mapping(mapping)
    except HireSyncError as exc:
        return Check("dimension competencies", "fail", str(exc))
    dims = [(d.get("code"), d.get("name")) for payload in records for d in (mapping.map(payload)[0] or {}).get(
        "dimensions", [])]
    if not dims:
        return Check("dimension competencies", "skip", "no dimension scores in the sampled records")
    missing = unmapped(mapping, dims)
    if missing:
        return Check("dimension competencies", "warn",
                     f"{len(missing)} vendor dimension codes map to no competency (kept under the vendor's code; "
                     f"add them to the mapping's competencies:): {', '.join(missing)}")
    return Check("dimension competencies", "pass",
                 f"all {len({c for c, _ in dims})} dimension codes map onto the competency model")


def _fingerprint(records: list[dict], mapping: MappingSpec) -> list[tuple[str | None, str]]:
    return [(mapping.key_of(p), payload_hash(p)) for p in records]


def _skipped(name: str) -> Check:
    return Check(name, "skip", "needs working credentials")
