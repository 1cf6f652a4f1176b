"""What a person reads while a run works: one summary line per step, progress every few seconds.

A step reports through `RunContext.progress(done, total, unit, **counts)`; the run's Reporter
decides what to do with it:
- LogReporter (Airflow tasks, and the CLI when stdout is not a terminal or with --json): plain
  lines, at most one every `HIRESYNC_PROGRESS_SECONDS` (5 s) while a step works, then one summary
  line per step, short enough for the Airflow UI's log width.
- RichReporter (the CLI on a terminal): a progress bar per step (rich, already installed with
  typer), the same summary line when the step ends.

Only names, counts, rates and times: never a value of a record.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from contextlib import contextmanager
from typing import Callable

log = logging.getLogger("hiresync.run")

# Library loggers that fill task logs with lines nobody can act on:
# - great_expectations: about 200 "Skipping registering function ..." INFO lines at import time,
#   and more INFO chatter per validation.
# - urllib3: "Retrying (Retry(total=...)) after connection broken by ..." WARNINGs, already
#   stripped of their URL by hiresync.privacy.redact; the step's own error says what failed.
# - openlineage / airflow.providers.openlineage: a line per emitted event.
NOISY_LOGGERS = {"great_expectations": logging.WARNING, "urllib3": logging.ERROR,
                 "openlineage": logging.WARNING, "airflow.providers.openlineage": logging.WARNING}
# A task log line longer than the UI's width is cut off: summaries stay within this.
LINE_WIDTH = 110
# Keys of a step result that make a summary long without telling a person much.
_LONG_KEYS = {"source", "run_id", "since", "max_cursor", "pulled_since", "watermark_after", "error", "data_docs",
              "mapping_version"}


@contextmanager
def quiet_libraries():
    """While a step runs: the noisy libraries' log levels raised, GX's import warnings ignored; all
    put back afterwards (the process may be a test or a CLI that wants them). Enter it before Great
    Expectations is imported: its registration lines are logged at import time."""
    saved = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    saved_log = log.level
    for name, level in NOISY_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < level:
            logger.setLevel(level)
    log.setLevel(logging.INFO)
    with warnings.catch_warnings():
        # GX imports deprecated stdlib modules (sre_constants, sre_parse): two warnings per task, nobody's to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"great_expectations(\.|$)")
        try:
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
            log.setLevel(saved_log)


def brief(result: dict) -> str:
    """'pulled 315, inserted 285, ...': the scalar counts of a step result, long keys left out."""
    parts = []
    for k, v in result.items():
        if k in _LONG_KEYS or isinstance(v, (dict, list)):
            continue
        parts.append(f"{k.replace('_', ' ')} {v}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} {v}")
    return ", ".join(parts) or "done"


def summary_line(step: str, source: str, result: dict, seconds: float) -> str:
    """One line a person reads in the UI: 'validate aiview: rows 315, known 0, failed rows 15 (3.7 s)'."""
    tail = f" ({seconds:.1f} s)"
    text = f"{step} {source}: {brief(result)}"
    if len(text) + len(tail) > LINE_WIDTH:
        text = text[:LINE_WIDTH - len(tail) - 1] + "…"
    return text + tail


def progress_line(step: str, source: str, done: int, total: int | None, unit: str, rate: float,
                  counts: dict) -> str:
    of = f" of {total:,}" if total else ""
    share = f" ({done / total:.0%})" if total else ""
    extra = "".join(f", {k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f", {k} {v}" for k, v in counts.items())
    return f"{step} {source}: {done:,}{of} {unit}{share}{extra}, {rate:,.0f} {unit}/s"[:LINE_WIDTH]


class Reporter:
    """Silent: what a context has when nobody watches (tests, library use)."""

    def start(self, step: str, source: str, total: int | None = None) -> None:
        pass

    def advance(self, done: int, total: int | None, unit: str, counts: dict) -> None:
        pass

    def finish(self, step: str, source: str, result: dict, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


class LogReporter(Reporter):
    """Plain lines through `emit` (a logger by default): progress at most every `every` seconds."""

    def __init__(self, emit: Callable[[str], None] | None = None, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.emit = emit or log.info
        self.every = float(os.environ.get("HIRESYNC_PROGRESS_SECONDS", 5)) if every is None else every
        self.clock = clock
        self.step = self.source = ""
        self._started = self._last = 0.0

    def start(self, step: str, source: str, total: int | None = None) -> None:
        self.step, self.source = step, source
        self._started = self._last = self.clock()

    def advance(self, done: int, total: int | None, unit: str, counts: dict) -> None:
        now = self.clock()
        if now - self._last < self.every:
            return
        self._last = now
        rate = done / max(now - self._started, 1e-9)
        self.emit(progress_line(self.step, self.source, done, total, unit, rate, counts))

    def finish(self, step: str, source: str, result: dict, seconds: float) -> None:
        self.emit(summary_line(step, source, result, seconds))


class RichReporter(Reporter):
    """A progress bar per step on a terminal (stderr), and the summary line when the step ends."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn)

        self.console, self.out = Console(stderr=True), Console()
        self.bar = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                            TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        self.task = None
        self._started = 0.0

    def start(self, step: str, source: str, total: int | None = None) -> None:
        self.task = self.bar.add_task(f"{step} {source}", total=total, rate="")
        self._started = time.monotonic()

    def advance(self, done: int, total: int | None, unit: str, counts: dict) -> None:
        if self.task is not None:
            rate = done / max(time.monotonic() - self._started, 1e-9)
            self.bar.update(self.task, completed=done, total=total, rate=f"{rate:,.0f} {unit}/s")

    def finish(self, step: str, source: str, result: dict, seconds: float) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        self.out.print(summary_line(step, source, result, seconds), markup=False, highlight=False)

    def close(self) -> None:
        self.bar.stop()


def cli_reporter(as_json: bool) -> Reporter:
    """A bar on a terminal; plain lines otherwise, on stderr with --json so stdout stays JSON."""
    if not as_json and sys.stderr.isatty():
        return RichReporter()
    stream = sys.stderr if as_json else sys.stdout
    return LogReporter(emit=lambda line: print(line, file=stream, flush=True))
