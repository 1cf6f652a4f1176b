"""`hiresync`: the command line for the same steps the Airflow DAGs run.

Typer gives typed options, help text and shell completion for free.
"""

from __future__ import annotations

import json
import logging
import sys

import typer

from hiresync.settings import Settings, safe_url

# Rich tracebacks would print local variables, which can hold personal data: plain tracebacks only.
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="HireSync: AI-interview results to the EHR.")
log = logging.getLogger("hiresync")


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
    from hiresync.pii import Keyring

    settings = Settings.from_env()
    if settings.key_file.exists() or _env_keys():
        typer.echo(f"key: {'HIRESYNC_KEYS' if _env_keys() else settings.key_file} (kept)")
    else:
        Keyring.generate(settings.key_file)
        typer.echo(f"key: generated {settings.key_file} (keep it safe; without it the archive cannot be read)")
    migrate(settings.hub_url)
    typer.echo(f"hub: schema up to date at {safe_url(settings.hub_url)}")


@app.command()
@_guarded
def sync(source: str = typer.Argument(..., help="source name from sources.yaml"),
         as_json: bool = typer.Option(False, "--json", help="print the run summary as JSON")) -> None:
    """Run one source end to end (extract, validate, map, load, deliver) without Airflow."""
    from hiresync.hub.store import migrate
    from hiresync.pipeline.runner import run_source

    settings = Settings.from_env()
    migrate(settings.hub_url)

    def progress(step: str, result: dict) -> None:
        if not as_json:
            typer.echo(f"  {step:<9} {_brief(result)}")

    summary = run_source(source, settings, on_step=progress)
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else _run_text(summary))


@app.command()
@_guarded
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Per source: the last run and its counts, the watermark, the quarantine; pending deliveries."""
    from hiresync.hub.store import migrate
    from hiresync.status import status as collect

    settings = Settings.from_env()
    migrate(settings.hub_url)
    doc = collect(settings)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    typer.echo(f"hub database: {doc['hub']}\nEHR database: {doc['ehr']}\nlineage:      {doc['lineage']}")
    for name, src in doc["sources"].items():
        typer.echo(f"\nsource {name}")
        typer.echo(f"  watermark:   {src['watermark'] or '(none yet)'}")
        typer.echo(f"  quarantine:  {src['quarantine_open']} open"
                   + (f" ({', '.join(f'{k} {v}' for k, v in sorted(src['quarantine_by_reason'].items()))})"
                      if src['quarantine_by_reason'] else ""))
        run = src["last_run"]
        typer.echo("  last run:    (none yet)" if run is None else "  last run:    " + _run_text(run).replace("\n", "\n  "))
    pending = doc["outbox_pending"]
    typer.echo(f"\noutbox pending: {', '.join(f'{k} {v}' for k, v in pending.items()) or 'nothing'}")


@app.command()
@_guarded
def deliver(target: str = typer.Argument("ehr", help="target name")) -> None:
    """Relay pending outbox rows to one target (also done at the end of every sync)."""
    from hiresync.hub.store import migrate
    from hiresync.outbox import relay
    from hiresync.pii import Keyring

    settings = Settings.from_env()
    migrate(settings.hub_url)
    n = relay(settings, Keyring.load(settings.key_file), target)
    typer.echo(f"delivered {n} records to {target}")


def _brief(result: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.items() if not isinstance(v, (dict, list)) and k not in ("source", "run_id"))


def _run_text(r: dict) -> str:
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

    return bool(os.environ.get("HIRESYNC_KEYS"))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
