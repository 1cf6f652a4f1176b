"""A relay beside the load: a second process delivers the batches the load has committed while the
load writes the next ones.

The load commits batch by batch, and each batch's outbox rows are due as soon as it commits; a
relay is safe beside anything that writes the hub (leases, `SKIP LOCKED`, a candidate's rows in
outbox order: hiresync.delivery.outbox). So a large run need not wait for its whole load before the
first record reaches a target, and the machine's second core, idle while the load runs, renders and
sends. The deliver step starts one beside its own relay too when many rows are due (what the relay
beside the load left, a target's backlog after an outage): two processes relay them. Either is
started only from `relay_beside_rows` rows on (`beside_when`): a process start costs about a second,
which a small run would feel.

The helper stops when the process that started it asks (after its current batch) or is gone (its
end of the pipe closes): a killed load leaves no relay behind. What it delivered, and any target it
had to leave (a failure, an open circuit), is its `outcome`: the load stages it as `relayed` for
the deliver step, which relays the rest and reports the run's delivery as one.
"""

from __future__ import annotations

import logging
import re
import resource
import subprocess
from contextlib import nullcontext
from multiprocessing.connection import Connection
from pathlib import Path

from hiresync.config.settings import Settings
from hiresync.helper_process import start_helper
from hiresync.privacy.pii import Keyring

log = logging.getLogger(__name__)
IDLE_SECONDS = 0.2  # between looks at the outbox when nothing was due
STOP_SECONDS = 120  # the most the load waits for the helper's last batch before it stops it hard


class RelayBeside:
    """`with RelayBeside(settings, keys, targets) as helper:` around the load's batches; afterwards
    `helper.outcome` is {"delivered": {target: rows}, "errors": {target: message}, "peak_rss_mb": n}
    (without the last when the helper died)."""

    def __init__(self, settings: Settings, keys: Keyring, targets: list[str]):
        self.settings, self.keys, self.targets = settings, keys, list(targets)
        self.outcome: dict = {"delivered": {}, "errors": {}}
        self._process = self._conn = None

    def __enter__(self) -> "RelayBeside":
        self._process, self._conn = start_helper(__name__, "_serve", self.settings, self.keys, self.targets)
        return self

    def __exit__(self, *exc) -> None:
        try:
            try:
                self._conn.send("stop")
            except OSError:  # it ended on its own (every target left): its outcome is in the pipe
                pass
            if self._conn.poll(STOP_SECONDS):
                self.outcome = self._conn.recv()
        except (EOFError, OSError):  # it died without one: the deliver step relays everything left
            pass
        finally:
            self._conn.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:  # stuck (a target that never answers): its leases run out
                self._process.terminate()
                self._process.wait()


def beside_when(settings: Settings, keys: Keyring, targets: list[str], rows: int) -> "RelayBeside | nullcontext":
    """`with beside_when(...) as helper:` a relay beside this process for `rows` rows to load or to
    relay, or nothing (helper None) below `relay_beside_rows` (0: never) or without targets."""
    threshold = settings.relay_beside_rows
    if not threshold or rows < threshold or not targets:
        return nullcontext()
    return RelayBeside(settings, keys, targets)


def _serve(settings: Settings, keys: Keyring, targets: list[str], conn: Connection) -> None:
    """The helper's loop: relay every target that is due, look again after a pause, until told to
    stop or the load's process is gone (poll() is true for a message and for a closed pipe)."""
    from hiresync.errors import HireSyncError
    from hiresync.delivery.outbox import relay, route_to
    from hiresync.heap import freeze_imports, give_back_free_memory

    freeze_imports()  # everything imported lives as long as this helper (hiresync/heap.py)
    delivered = {t: 0 for t in targets}
    errors: dict[str, str] = {}
    routes = {}  # built once: the loop looks several times a second
    stopped = conn.poll
    while not stopped():
        moved = 0
        for target in (t for t in targets if t not in errors):
            try:
                if target not in routes:
                    routes[target] = route_to(settings, target)
                # Claims the size of a load batch: on SQLite each claim and each record of outcomes
                # waits for the batch the load is writing, and smaller claims fell behind the load
                # (docs/benchmarks.md); the relay sends each claim in parts, so memory stays small.
                n = relay(settings, keys, target, batch_size=settings.batch_size, stop=stopped, route=routes[target])
            except HireSyncError as exc:  # the deliver step meets the target again and decides
                errors[target] = str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a helper: the deliver step relays what is left
                errors[target] = f"delivery to {target!r} by the relay beside stopped ({type(exc).__name__})"
                log.warning("%s", errors[target])
                continue
            delivered[target] += n
            moved += n
            give_back_free_memory()  # its rows are sent: this helper's RSS adds to the load's
        if len(errors) == len(targets):
            break
        if not moved:
            conn.poll(IDLE_SECONDS)
    try:
        conn.send({"delivered": delivered, "errors": errors, "peak_rss_mb": _peak_rss_mb()})
    except OSError:  # the load's process is gone: nobody to tell
        pass


def relayed(staging) -> dict:
    """What helpers beside this run's load delivered, and the targets they had to leave."""
    return staging.read_json("relayed") if staging.exists("relayed") else {"delivered": {}, "errors": {}}


def merge_relayed(staging, outcome: dict) -> dict:
    """This helper's outcome added to an earlier attempt's (a retried load)."""
    before = relayed(staging)
    delivered = dict(before["delivered"])
    for target, n in outcome["delivered"].items():
        delivered[target] = delivered.get(target, 0) + n
    return {"delivered": delivered, "errors": before["errors"] | outcome["errors"]}


def _peak_rss_mb() -> float:
    """This process's own peak RSS (for `make bench`). Not ru_maxrss: on Linux it keeps the high
    mark across exec, and a spawned process starts as a fork of the load's, so it would report the
    load's memory at the start."""
    try:
        return int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) / 1024
    except (OSError, TypeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
