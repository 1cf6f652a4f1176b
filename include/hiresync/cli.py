"""`hiresync`: the command line for the same steps the Airflow DAGs run.

Typer gives typed options, help text and shell completion for free.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from hiresync.config.settings import Settings, safe_url

# Rich tracebacks would print local variables, which can hold personal data: plain tracebacks only.
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="HireSync: AI-interview results to the EHR.")
log = logging.getLogger("hiresync")


def _hub_settings() -> Settings:
    """Settings from the environment, with the hub schema brought up to date (idempotent)."""
    from hiresync.hub.store import migrate

    settings = Settings.from_env()
    migrate(settings.hub_url)
    return settings


def _usage_error(message: str) -> None:
    """A bad argument: one plain line (no box that wraps it) and exit code 2, as for any usage error."""
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def _known_source(name: str | None, option: str = "--source") -> str | None:
    """A source name from sources.yaml, or a usage error (exit 2) listing the configured ones."""
    from hiresync.config.sources import load_sources

    if name is None:
        return None
    names = sorted(load_sources(Settings.from_env()))
    if name not in names:
        _usage_error(f"{option}: no source {name!r} in sources.yaml; configured: {', '.join(names)}")
    return name


def _known_target(name: str | None, option: str = "--target") -> str | None:
    """A target with a profile under connectors/profiles/targets/, or a usage error (exit 2) listing them."""
    from hiresync.delivery.targets import PROFILE_DIR

    if name is None:
        return None
    names = sorted(p.stem for p in Settings.from_env().resolve(PROFILE_DIR).glob("*.yaml"))
    if name not in names:
        _usage_error(f"{option}: no target {name!r} ({PROFILE_DIR}/<name>.yaml); configured: {', '.join(names)}")
    return name


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(1)


def _guarded(fn):
    """Our own errors become one clear line and exit code 1; anything else is a bug: traceback."""
    from functools import wraps

    from connectors.errors import SourceError
    from hiresync.errors import HireSyncError

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (HireSyncError, SourceError) as exc:
            _fail(exc)

    return wrapper


@app.command()
@_guarded
def init() -> None:
    """Create the local encryption key (if none) and bring the hub database schema up to date."""
    from hiresync.hub.store import migrate
    from hiresync.privacy.pii import Keyring

    from hiresync.config.files import private_dir, tighten

    settings = Settings.from_env()
    private_dir(settings.var_dir)
    tighten(settings.var_dir, 0o700)  # staging, keys, databases and exports live here: the owner's only
    if settings.key_file.exists() or _env_keys():
        typer.echo(f"key: {'from the secrets backend' if _env_keys() else settings.key_file} (kept)")
    else:
        Keyring.generate(settings.key_file)
        typer.echo(f"key: generated {settings.key_file} (keep it safe; without it the archive cannot be read)")
    migrate(settings.hub_url)
    typer.echo(f"hub: schema up to date at {safe_url(settings.hub_url)}")


@app.command()
@_guarded
def sync(source: str = typer.Argument(..., help="source name from sources.yaml"),
         as_json: bool = typer.Option(False, "--json", help="print the run summary as JSON")) -> None:
    """Run one source end to end (extract, validate, map, load, deliver) without Airflow: a progress
    bar per step on a terminal, plain lines otherwise (on stderr with --json)."""
    from hiresync.monitor.progress import cli_reporter
    from hiresync.pipeline.runner import run_source

    _known_source(source, "SOURCE")
    settings = _hub_settings()
    reporter = cli_reporter(as_json)
    try:
        summary = run_source(source, settings, reporter=reporter)
    finally:
        reporter.close()
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else _run_text(summary))


@app.command()
@_guarded
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Per source: the last run and its counts, the watermark, the quarantine; pending deliveries."""
    from hiresync.monitor.status import status as collect

    settings = _hub_settings()
    doc = collect(settings)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    typer.echo(f"hub database: {doc['hub']}\nEHR database: {doc['ehr']}\nlineage:      {doc['lineage']}")
    typer.echo(f"data docs:    {doc['data_docs'] or '(built after the first run)'}")
    for name, src in doc["sources"].items():
        typer.echo(f"\nsource {name}")
        typer.echo(f"  state:       {src['state']}" + (f" ({src['reason']})" if src["reason"] else ""))
        typer.echo(f"  watermark:   {src['watermark'] or '(none yet)'}")
        typer.echo(f"  quarantine:  {src['quarantine_open']} open"
                   + (f" ({', '.join(f'{k} {v}' for k, v in sorted(src['quarantine_by_reason'].items()))})"
                      if src['quarantine_by_reason'] else ""))
        if src.get("unmapped_dimensions"):
            typer.echo(f"  competency:  {len(src['unmapped_dimensions'])} dimension codes map to no competency "
                       f"(kept under the vendor's code): {', '.join(src['unmapped_dimensions'])}")
        run = src["last_run"]
        typer.echo("  last run:    (none yet)" if run is None else "  last run:    " + _run_text(run).replace("\n", "\n  "))
    pending = doc["outbox_pending"]
    typer.echo(f"\noutbox pending: {', '.join(f'{k} {v}' for k, v in pending.items()) or 'nothing'}")
    for name, tgt in doc["targets"].items():
        typer.echo(f"target {name:<9} {tgt['state']}" + (f" ({tgt['reason']})" if tgt["reason"] else ""))
    typer.echo(f"\nopen issues: {len(doc['issues']) or 'none'}")
    for issue in doc["issues"]:
        typer.echo(f"  {issue['code']} [{issue['scope']} {issue['subject']}]: {issue['detail']}")


ratings_app = typer.Typer(help="Performance ratings (绩效) from the EHR, for the HR analytics.")
app.add_typer(ratings_app, name="ratings")


@ratings_app.command("import")
@_guarded
def ratings_import(folder: Path = typer.Option(None, "--folder", help="drop folder (default var/drops/performance)")) -> None:
    """Read new rating files (resident_id,candidate_key,period,rating); bad rows go to quarantine."""
    from hiresync.ingest.ratings import import_drop

    r = import_drop(_hub_settings(), folder)
    typer.echo(f"files {r.files} (already read: {len(r.skipped_files)}), rows {r.rows}: loaded {r.loaded}, "
               f"quarantined {r.quarantined}" + (f" ({', '.join(f'{k} {v}' for k, v in sorted(r.reasons.items()))})"
                                                  if r.reasons else ""))


@app.command()
@_guarded
def report(start: str = typer.Option(None, "--from", help="first day (YYYY-MM-DD, the group's time zone)"),
           end: str = typer.Option(None, "--to", help="last day (YYYY-MM-DD), inclusive"),
           department: str = typer.Option(None, "--department", help="one department only"),
           out: Path = typer.Option(None, "--out", help="folder for the files (default var/reports)"),
           user: str = typer.Option(..., "--user", help="who reads it: a user of policy.yaml report_access")) -> None:
    """The HR report: one offline HTML file with charts and an Excel workbook with the same tables."""
    from datetime import date

    from hiresync.errors import HireSyncError
    from hiresync.report.access import viewer_for
    from hiresync.report.render import build, local_stamp, write

    def day(name: str, value: str | None) -> date | None:
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise HireSyncError(f"{name}: not a date (rule: YYYY-MM-DD)") from None

    first, last = day("--from", start), day("--to", end)
    if first and last and first > last:
        raise HireSyncError("--from: after --to (rule: the period must not be empty)")
    settings = _hub_settings()
    doc = build(settings, viewer_for(settings, user), first, last, department)
    html_path, xlsx_path = write(doc, out or settings.var_dir / "reports", f"hr-report-{local_stamp(settings)}")
    typer.echo(f"report: {html_path}\nworkbook: {xlsx_path}")


@app.command()
@_guarded
def deliver(target: str = typer.Argument("ehr", help="target name")) -> None:
    """Relay pending outbox rows to one target (also done at the end of every sync)."""
    from hiresync.delivery.outbox import relay
    from hiresync.privacy.keys import hub_keys

    import signal

    from hiresync.delivery.outbox import leased_elsewhere

    _known_target(target, "TARGET")
    settings = _hub_settings()
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    n = relay(settings, hub_keys(settings), target)
    leased, until = leased_elsewhere(settings, target)
    if leased:
        typer.echo(f"delivered {n} records to {target}; {leased} rows are leased by another relay until "
                   f"{until:%H:%M:%S} UTC, retry then")
    else:
        typer.echo(f"delivered {n} records to {target}")


def _stop_like_ctrl_c(*_) -> None:
    """SIGTERM (a supervisor stopping us) unwinds like Ctrl-C, so a relay gives its leases back."""
    raise KeyboardInterrupt


@app.command()
@_guarded
def trace(record: str = typer.Argument(..., help='result key "vendor:id", vendor result id, or masked resident ID'),
          as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """The whole journey of a record: payload versions, validation, mapping rules, stored result, deliveries."""
    from hiresync.audit import trace as tracing

    _lineage_command(tracing.trace, tracing.render_text, record, as_json)


@app.command()
@_guarded
def explain(record: str = typer.Argument(..., help='result key "vendor:id", vendor result id, or masked resident ID'),
            as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """How a result's pass/fail status and score were derived, and whether a person reviewed it."""
    from hiresync.audit import explain as explaining

    _lineage_command(explaining.explain, explaining.render_text, record, as_json)


def _lineage_command(collect, render, record: str, as_json: bool) -> None:
    from hiresync.audit.trace import AmbiguousRecord
    from hiresync.privacy.keys import hub_keys

    settings = _hub_settings()
    try:
        doc = collect(settings, hub_keys(settings), record)
    except AmbiguousRecord as exc:  # not an error of the tool: list the (masked) candidates to choose from
        typer.echo(json.dumps({"error": str(exc), "matches": exc.matches}, ensure_ascii=False, indent=2) if as_json
                   else f"{exc}:\n" + "\n".join(f"  {m['candidate_key']}  {m['full_name']}  {m['national_id']}  "
                                                 f"results: {', '.join(m['results']) or '-'}" for m in exc.matches))
        raise typer.Exit(1)
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2) if as_json else render(doc), nl=not as_json)


keys_app = typer.Typer(no_args_is_help=True, help="Encryption keys: rotate and check.")
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
@_guarded
def keys_rotate(batch_size: int = typer.Option(500, help="rows per transaction"),
                new_key: bool = typer.Option(True, help="add a new key version to the local key file first "
                                                        "(with HIRESYNC_KEYS the secrets backend does that)")) -> None:
    """Re-encrypt and re-index the hub under the active key, in batches, while syncs keep running."""
    from hiresync.privacy.keys import hub_keys, rotate
    from hiresync.privacy.pii import Keyring

    settings = _hub_settings()
    if new_key and not _env_keys():
        version = Keyring.add_version(settings.key_file)
        typer.echo(f"key: version {version} added to {settings.key_file} and made active")
    done = rotate(settings, hub_keys(settings), batch_size,
                  progress=lambda table, n: typer.echo(f"  {table}: {n} re-keyed"))
    typer.echo("rotation complete: " + ", ".join(f"{t} {n}" for t, n in done.items()))


@keys_app.command("status")
@_guarded
def keys_status() -> None:
    """Rows per key version: whether an older key can be retired."""
    from hiresync.privacy.keys import status as key_status
    from hiresync.privacy.keys import hub_keys

    settings = Settings.from_env()
    typer.echo(json.dumps(key_status(settings, hub_keys(settings)), indent=2))


retention_app = typer.Typer(no_args_is_help=True, help="Apply the retention policy (policy.yaml).")
subject_app = typer.Typer(no_args_is_help=True, help="Data-subject requests (PIPL Art. 45, 47) for one person.")
app.add_typer(retention_app, name="retention")
app.add_typer(subject_app, name="subject")


@retention_app.command("purge")
@_guarded
def retention_purge() -> None:
    """Purge raw payloads, video links and quarantined records past their lifetime; tombstones stay."""
    from hiresync.privacy.retention import purge

    settings = _hub_settings()
    done = purge(settings, actor="cli")
    typer.echo("purged: " + ", ".join(f"{k} {v}" for k, v in done.items()))


@subject_app.command("export")
@_guarded
def subject_export(national_id: str = typer.Option(..., "--national-id", help="the person's resident ID number"),
                   out: Path = typer.Option(..., "--out", help="file to write (created readable by you only)"),
                   operator: str = typer.Option(..., "--operator", help="who asks, for the audit trail")) -> None:
    """Write everything the hub holds on one person to a file, for an authorised operator."""
    from hiresync.privacy.keys import hub_keys
    from hiresync.tools.subject import export

    settings = Settings.from_env()
    done = export(settings, hub_keys(settings), national_id, out, operator)
    typer.echo(f"exported {_subject_counts(done)} to {done['file']}")
    for where in done["unreadable_staging"]:
        typer.echo(f"warning: {where} could not be read (no run id for it): check it by hand", err=True)


@subject_app.command("erase")
@_guarded
def subject_erase(national_id: str = typer.Option(..., "--national-id", help="the person's resident ID number"),
                  operator: str = typer.Option(..., "--operator", help="who asks, for the audit trail"),
                  yes: bool = typer.Option(False, "--yes", help="do it (without it, nothing is erased)")) -> None:
    """Remove one person from the hub and queue deletion at every target; a tombstone stays."""
    from hiresync.privacy.keys import hub_keys
    from hiresync.tools.subject import erase

    if not yes:
        _fail(Exception("erasure cannot be undone: add --yes to go ahead"))
    settings = Settings.from_env()
    done = erase(settings, hub_keys(settings), national_id, operator)
    typer.echo(f"erased {_subject_counts(done)}; deletion queued for {', '.join(done['erase_requests']) or 'no target'} "
               "(run `hiresync deliver <target>`); ask the vendors to delete too")
    for where in done["unreadable_staging"]:
        typer.echo(f"warning: {where} could not be read (no run id for it): check and remove it", err=True)


def _subject_counts(done: dict) -> str:
    who = f"candidate {done['candidate_key']}" if done["candidate_key"] else "records of an unmatched person"
    return (f"{who} ({done['results']} interview results, {done['raw_payloads']} vendor payloads, "
            f"{done['quarantine']} quarantined, {done['identity_reviews']} identity reviews, {done['inbox']} inbox "
            f"deliveries, {done['outbox']} outbox rows, {done['staging_runs']} staging folders)")


identity_app = typer.Typer(no_args_is_help=True, help="Candidates that could not be matched safely.")
app.add_typer(identity_app, name="identity")


@identity_app.command("review")
@_guarded
def identity_review(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Open identity conflicts (masked): same ID with another name, or one phone and email under two IDs."""
    from hiresync.load.identity import list_reviews

    settings = _hub_settings()
    reviews = list_reviews(settings)
    if as_json:
        typer.echo(json.dumps(reviews, ensure_ascii=False, indent=2))
        return
    if not reviews:
        typer.echo("no open identity reviews")
    for r in reviews:
        details = ", ".join(f"{k} {v}" for k, v in r["details"].items() if k != "run_id")
        typer.echo(f"#{r['id']} {r['kind']:<13} {r['source']}:{r['vendor_result_id']}  vs candidate {r['candidate_id']}  ({details})")


@identity_app.command("resolve")
@_guarded
def identity_resolve(review_id: int = typer.Argument(..., help="the review number from `identity review`"),
                     same_person: bool = typer.Option(..., "--same-person/--different-person",
                                                      help="whether the result belongs to the existing candidate"),
                     operator: str = typer.Option(..., "--operator", help="who decides, for the audit trail")) -> None:
    """Record a person's decision; `hiresync quarantine replay` then loads the result accordingly."""
    from hiresync.load.identity import resolve_review

    done = resolve_review(Settings.from_env(), review_id, same_person, operator)
    typer.echo(f"review #{done['id']} resolved: {done['resolution']}; replay {done['source']}:{done['vendor_result_id']} "
               "with `hiresync quarantine replay` to load it")


mapping_app = typer.Typer(no_args_is_help=True, help="Try a mapping on payloads; compare mapping versions.")
quarantine_app = typer.Typer(no_args_is_help=True, help="List and replay quarantined records.")
source_app = typer.Typer(no_args_is_help=True, help="Operational state of a source (frozen after schema drift).")
app.add_typer(mapping_app, name="mapping")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(source_app, name="source")


@mapping_app.command("test")
@_guarded
def mapping_test(mapping: Path = typer.Argument(..., help="mapping spec (YAML)"),
                 payloads: Path = typer.Argument(..., help="vendor payloads: JSON (object or list) or NDJSON")) -> None:
    """Map a payload file and print the canonical records (personal data masked) or the field-level
    errors, with the checks the sync applies to mapped records (FUTURE, ORDER, DUPLICATE_KEY, ...)."""
    from hiresync.contract.canonical_suite import validate_records
    from hiresync.mapping.tools import try_mapping

    results = try_mapping(mapping, payloads,
                          lambda mapped, spec: validate_records(mapped, spec, f"{spec.name}.mapping_test")[0])
    for r in results:
        typer.echo(json.dumps(r, ensure_ascii=False, default=str))
    failed = sum(1 for r in results if "errors" in r)
    typer.echo(f"{len(results)} records: {len(results) - failed} mapped, {failed} with errors", err=True)
    if failed:
        raise typer.Exit(1)


@mapping_app.command("diff")
@_guarded
def mapping_diff(mapping: Path = typer.Argument(..., help="the new mapping spec (YAML)"),
                 against: str = typer.Option(..., "--against", help="the old mapping: a file, or a version in the hub"),
                 source: str = typer.Option(None, "--source", help="source whose stored payloads to compare"),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Which stored records and fields the new mapping would change (values masked)."""
    from hiresync.mapping.tools import diff_mapping

    doc = diff_mapping(Settings.from_env(), mapping, against, source)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
        return
    typer.echo(f"{doc['mapping']} {doc['old_version']} -> {doc['new_version']} on {doc['source']}: "
               f"{doc['changed']} of {doc['compared']} stored records would change")
    for field, n in sorted(doc["changed_by_field"].items()):
        typer.echo(f"  {field}: {n}")
    for c in doc["changes"]:
        if c["change"] == "fields":
            typer.echo(f"{c['key']}: " + "; ".join(f"{f['field']} {f['old']!r} -> {f['new']!r}" for f in c["fields"]))
        else:
            errors = c.get("new_errors") or c.get("old_errors") or []
            typer.echo(f"{c['key']}: {c['change']} (" + ", ".join(f"{e['field']} {e['rule']}" for e in errors) + ")")


@quarantine_app.command("list")
@_guarded
def quarantine_list(source: str = typer.Option(None, "--source"), reason: str = typer.Option(None, "--reason"),
                    limit: int = typer.Option(100, "--limit", help="rows to show (counts cover all)"),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Open quarantine rows (masked) with counts by reason."""
    from hiresync.tools.quarantine import listing

    _known_source(source)
    settings = _hub_settings()
    doc = listing(settings, source, reason, limit)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{doc['open']} open: " + (", ".join(f"{k} {v}" for k, v in doc["by_reason"].items()) or "nothing"))
    for r in doc["rows"]:
        typer.echo(f"#{r['id']} {r['source']} {r['vendor_result_id']} {r['reason']}: "
                   + "; ".join(f"{p['field']} {p['rule']} ({p.get('value')})" for p in r["problems"]))
    if doc["cut"]:
        typer.echo(f"(showing {doc['shown']} of {doc['open']}, oldest first; --limit N for more)")


@quarantine_app.command("replay")
@_guarded
def quarantine_replay(source: str = typer.Option(None, "--source"), reason: str = typer.Option(None, "--reason"),
                      as_json: bool = typer.Option(False, "--json")) -> None:
    """Re-run open quarantined payloads through the current mapping and the normal load path."""
    from hiresync.tools.quarantine import replay

    _known_source(source)
    settings = _hub_settings()

    def progress(src: str, step: str, result: dict) -> None:
        if not as_json:
            typer.echo(f"  {src} {step:<9} {_brief(result)}")

    summaries = replay(settings, source, reason, on_step=progress)
    if as_json:
        typer.echo(json.dumps(summaries, ensure_ascii=False, indent=2))
    else:
        typer.echo("\n".join(_run_text(s) for s in summaries) or "nothing to replay")


@source_app.command("unfreeze")
@_guarded
def source_unfreeze(source: str = typer.Argument(..., help="source name from sources.yaml")) -> None:
    """Let a source frozen by schema drift run again (its next run re-pulls the frozen batch)."""
    from hiresync.contract.drift import unfreeze
    from hiresync.config.sources import get_source

    _known_source(source, "SOURCE")
    settings = _hub_settings()
    get_source(settings, source)
    typer.echo(f"source {source}: " + ("unfrozen" if unfreeze(settings, source) else "was not frozen"))


@source_app.command("reset-watermark")
@_guarded
def source_reset_watermark(source: str = typer.Argument(..., help="source name from sources.yaml"),
                           to: str = typer.Option(None, "--to", help="ISO time with offset; default: the newest "
                                                  "result time the hub holds that is not in the future")) -> None:
    """Move a watermark that is ahead of the clock back to where the source's data is."""
    from datetime import datetime

    from hiresync.errors import HireSyncError
    from hiresync.tools.watermark import reset_watermark

    try:
        when = datetime.fromisoformat(to) if to else None
    except ValueError:
        raise HireSyncError("--to is not an ISO-8601 time, e.g. 2026-12-01T08:00:00+08:00") from None
    before, after = reset_watermark(_hub_settings(), source, when)
    typer.echo(f"source {source}: watermark {before.isoformat() if before else 'none'} -> "
               f"{after.isoformat() if after else 'none (the next run pulls from the profile start)'}")


@source_app.command("compact-payloads")
@_guarded
def source_compact_payloads(source: str = typer.Argument(..., help="source name from sources.yaml")) -> None:
    """Compress the source's raw payloads stored before it had a compression dictionary against it."""
    from hiresync.hub.store import engine_for
    from hiresync.privacy.keys import hub_keys
    from hiresync.tools.compact import compact_payloads, describe

    _known_source(source, "SOURCE")
    settings = _hub_settings()
    result = compact_payloads(settings, hub_keys(settings), source)
    typer.echo(describe(result, engine_for(settings.hub_url).dialect.name))


connector_app = typer.Typer(no_args_is_help=True, help="Check a vendor connector (profile + mapping) before enabling it.")
app.add_typer(connector_app, name="connector")


@connector_app.command("check")
@_guarded
def connector_check(source: str = typer.Argument(..., help="source name from sources.yaml"),
                    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
                    strict: bool = typer.Option(False, "--strict", help="warnings (optional paths no record has) fail too"),
                    max_fail_share: float = typer.Option(None, "--max-fail-share", min=0, max=1,
                                                         help="a field failing on more than this share of the sampled "
                                                              "records fails the check (default: the source's drift_threshold)"),
                    ) -> None:
    """sources.yaml is sound, credentials work, one page reads, the records map (no field failing on
    more than a share of them), optional paths occur, a far-future watermark returns nothing, two
    reads agree. Reads only; exit code 1 if any check fails (or, with --strict, warns)."""
    from hiresync.tools.connector_check import as_dicts, check_source, passed, render

    checks = check_source(source, Settings.from_env(), max_fail_share)
    ok = passed(checks, strict)
    typer.echo(json.dumps({"source": source, "passed": ok, "checks": as_dicts(checks)},
                          ensure_ascii=False, indent=2) if as_json else render(source, checks, strict))
    raise typer.Exit(0 if ok else 1)


webhook_app = typer.Typer(no_args_is_help=True, help="Receive pushed deliveries (signed webhooks) into the inbox.")
app.add_typer(webhook_app, name="webhook")


@webhook_app.command("serve")
@_guarded
def webhook_serve(port: int = typer.Option(8090, "--port", help="TCP port (0: any free port)"),
                  host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on"),
                  source: list[str] = typer.Option(None, "--source", help="webhook source(s); default: every "
                                                   "kind: webhook source in sources.yaml")) -> None:
    """Serve POST /webhooks/<source>: verify the signature, store each delivery in the inbox once,
    then answer 2xx. Runs until Ctrl-C; the source's sync run drains the inbox."""
    from hiresync.ingest.webhook import WebhookReceiver

    settings = _hub_settings()
    logging.getLogger("hiresync.ingest.webhook").setLevel(logging.INFO)
    from hiresync.monitor.alerts import Alert, load_alert_config, send

    alerts = load_alert_config(settings)
    receiver = WebhookReceiver(settings, source or None, host=host, port=port,
                               alert=lambda text: send(Alert("HireSync webhook 投递冲突", text), alerts))
    receiver.start()
    for name in receiver.endpoints:
        typer.echo(f"webhook {name}: POST {receiver.url_for(name)}")
    typer.echo("receiving (Ctrl-C to stop)")
    receiver.serve_forever()
    typer.echo("stopped: " + (", ".join(f"{k} {v}" for k, v in sorted(receiver.counts.items())) or "nothing received"))


workflow_app = typer.Typer(no_args_is_help=True, help="Workflow events: AI passed -> re-interview -> offer -> hired.")
app.add_typer(workflow_app, name="workflow")


@workflow_app.command("pull")
@_guarded
def workflow_pull(target: str = typer.Option("grouphr", help="whose status-change feed (workflow.yaml feeds:)")) -> None:
    """Record the status changes the group HR system published since the last pull (repeats are ignored)."""
    from hiresync.delivery.workflow import pull

    counts = pull(_hub_settings(), target)
    typer.echo(", ".join(f"{k} {v}" for k, v in counts.items()))


@workflow_app.command("show")
@_guarded
def workflow_show(result: str = typer.Argument(..., help='result key "vendor:vendor result id"'),
                  as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """A result's workflow stages, oldest first (no personal data)."""
    from hiresync.delivery.workflow import history

    stages = history(_hub_settings(), result)
    if as_json:
        typer.echo(json.dumps(stages, ensure_ascii=False, indent=2))
        return
    if not stages:
        typer.echo(f"{result}: no workflow events yet")
    for e in stages:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v is not None)
        typer.echo(f"{e['occurred_at']}  {e['stage']:<22} {e['origin']:<10} {detail}")


outbox_app = typer.Typer(no_args_is_help=True, help="Deliveries: what waits, what was refused; retry and replay.")
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("status")
@_guarded
def outbox_status(target: str = typer.Option(None, help="one target only"),
                  limit: int = typer.Option(20, "--limit", min=0, help="dead letters to list, newest first"),
                  as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Per target: pending, backing off, sent, dead; the latest dead letters (masked reasons)."""
    from hiresync.delivery.outbox_admin import status as collect

    _known_target(target)
    doc = collect(Settings.from_env(), target, limit)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    for name, t in sorted(doc["targets"].items()):
        typer.echo(f"{name:<9} pending {t['pending']} (backing off {t['backing_off']}), sent {t['sent']}, dead {t['dead']}"
                   + (f"; oldest pending {t['oldest_pending']}" if t["oldest_pending"] else ""))
    for d in doc["dead_letters"]:
        typer.echo(f"  dead #{d['id']} {d['target']} {d['result'] or d['kind']}: {d['reason']} ({d['attempts']} attempts)")
    if doc["dead_letters_cut"]:
        typer.echo(f"  (showing the newest {len(doc['dead_letters'])} of {doc['dead_letters_total']} dead letters; "
                   "--limit N for more)")
    if not doc["targets"]:
        typer.echo("outbox empty")


@outbox_app.command("retry")
@_guarded
def outbox_retry(target: str = typer.Option(None, help="one target only"),
                 row: list[int] = typer.Option(None, "--id", help="outbox row id (repeatable)")) -> None:
    """Make dead letters and rows backing off due now (after the cause was fixed); the next relay sends them."""
    from hiresync.delivery.outbox_admin import retry

    _known_target(target)
    typer.echo(f"{retry(Settings.from_env(), target, row or None)} rows due now")


@outbox_app.command("replay")
@_guarded
def outbox_replay(target: str = typer.Argument(..., help="target name"),
                  run: str = typer.Option(None, help="only rows of this run id")) -> None:
    """Send delivered rows again (a target restored from a backup); same idempotency keys."""
    from hiresync.delivery.outbox_admin import replay

    _known_target(target, "TARGET")
    typer.echo(f"{replay(Settings.from_env(), target, run_id=run)} rows queued again for {target}")


def _brief(result: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.items() if not isinstance(v, (dict, list)) and k not in ("source", "run_id"))


def _run_text(r: dict) -> str:
    if r["status"] in ("failed", "extracting"):  # not loaded: no accounting to add up yet
        stopped = f" (stopped at {r['failed_step']})" if r.get("failed_step") else ""
        loaded = (f"{r['rows_loaded']} rows loaded in whole batches, the run not" if r.get("rows_loaded")
                  else "nothing loaded")
        lines = [f"{r['run_id']} [{r['status']}]",
                 f"pulled {r['pulled']}, {loaded}{stopped}; watermark unchanged"]
    else:
        lines = [
            f"{r['run_id']} [{r['status']}]",
            f"pulled {r['pulled']} = inserted {r['inserted']} + updated {r['updated']} + unchanged {r['unchanged']}"
            f" + quarantined {r['quarantined']}",
            f"delivered {r['delivered']}; pulled since {r['pulled_since']}; watermark now {r['watermark_after']}",
        ]
    if r.get("error"):
        lines.append(f"error: {r['error']}")
    return "\n".join(lines)


def _env_keys() -> bool:
    import os

    return bool(os.environ.get("HIRESYNC_KEYS") or os.environ.get("HIRESYNC_KEYS_CONNECTION"))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
