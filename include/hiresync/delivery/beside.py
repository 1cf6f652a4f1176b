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

The load hands the helper the body of each outbox row it writes, while the row's batch commits
(`hand`): the very body the relay would render from the stored payload (the load mapped that
payload with the same spec), so the helper need not decrypt, parse and map every payload again, a
third of its work; rows it claims before their bodies arrive, or beyond what it keeps waiting
(`HANDED_BYTES`), it renders as any relay does (hiresync.delivery.render checks that the payload is
still stored either way: an erased payload's row is never sent).

The helper stops when the process that started it asks (after its current batch) or is gone (its
end of the pipe closes): a killed load leaves no relay behind. What it delivered, and any target it
had to leave (a failure, an open circuit), is its `outcome`: the load stages it as `relayed` for
the deliver step, which relays the rest and reports the run's delivery as one.
"""

from __future__ import annotations

import logging
import queue
import re
import resource
import subprocess
import threading
from collections import OrderedDict
from contextlib import nullcontext
from multiprocessing.connection import Connection
from pathlib import Path

from hiresync import jsonfast
from hiresync.config.settings import Settings
from hiresync.helper_process import start_helper
from hiresync.privacy.pii import Keyring

log = logging.getLogger(__name__)
IDLE_SECONDS = 0.2  # between looks at the outbox when nothing was due
STOP_SECONDS = 120  # the most the load waits for the helper's last batch before it stops it hard
# The most handed bodies the helper keeps waiting, as bytes (about a kilobyte each): a relay that
# falls behind renders the later rows itself rather than growing beside the load.
HANDED_BYTES = 4 * 1024 * 1024
# Bodies per message. A batch's bodies in one message (two megabytes or so) left the helper about
# 20 MB larger at 40,000 results: each message is read in pieces into buffers of its whole size,
# which glibc then keeps. In messages of about 80 KB it was about 7 MB (docs/benchmarks.md).
HAND_BODIES = 64


class RelayBeside:
    """`with RelayBeside(settings, keys, targets) as helper:` around the load's batches; afterwards
    `helper.outcome` is {"delivered": {target: rows}, "errors": {target: message}, "handed": rows
    whose body the load handed over, "peak_rss_mb": n} (without the last two when the helper died)."""

    def __init__(self, settings: Settings, keys: Keyring, targets: list[str]):
        self.settings, self.keys, self.targets = settings, keys, list(targets)
        self.outcome: dict = {"delivered": {}, "errors": {}}
        self._process = self._conn = None
        # Messages go out from a thread of their own: a batch's bodies are a megabyte or two, which
        # the pipe takes in pieces as the helper reads them, and the load need not wait for that.
        self._outgoing: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send, daemon=True)

    def __enter__(self) -> "RelayBeside":
        self._process, self._conn = start_helper(__name__, "_serve", self.settings, self.keys, self.targets)
        self._sender.start()
        return self

    def hand(self, bodies: dict[str, dict]) -> None:
        """Outbox idempotency key -> the body of that row, for rows just committed."""
        items = list(bodies.items())
        for i in range(0, len(items), HAND_BODIES):
            self._outgoing.put(b"\n".join(key.encode() + b"\t" + jsonfast.dumpb(body) for key, body in items[i:i + HAND_BODIES]))

    def _send(self) -> None:
        while (message := self._outgoing.get()) is not None:
            try:
                self._conn.send_bytes(message)
            except OSError:  # it ended on its own (every target left): nobody to hand them to
                pass

    def __exit__(self, *exc) -> None:
        self._outgoing.put(b"stop")
        self._outgoing.put(None)
        self._sender.join()  # what was handed over goes first, then "stop"
        try:
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
    handed = Handed()
    stop = threading.Event()
    threading.Thread(target=_receive, args=(conn, handed, stop), daemon=True).start()
    stopped = stop.is_set
    while not stopped():
        moved = 0
        for target in (t for t in targets if t not in errors):
            try:
                if target not in routes:
                    routes[target] = route_to(settings, target)
                # Claims the size of a load batch: on SQLite each claim and each record of outcomes
                # waits for the batch the load is writing, and smaller claims fell behind the load
                # (docs/benchmarks.md); the relay sends each claim in parts, so memory stays small.
                n = relay(settings, keys, target, batch_size=settings.batch_size, stop=stopped, route=routes[target],
                          handed=handed.take)
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
            stop.wait(IDLE_SECONDS)
    try:
        conn.send({"delivered": delivered, "errors": errors, "handed": handed.given, "peak_rss_mb": _peak_rss_mb()})
    except OSError:  # the load's process is gone: nobody to tell
        pass


def _receive(conn: Connection, handed: "Handed", stop: threading.Event) -> None:
    """The helper's reader of the pipe: bodies the load hands over, until "stop" or the pipe closes."""
    try:
        while (message := conn.recv_bytes()) != b"stop":
            handed.add(message)
    except (EOFError, OSError):  # the load's process is gone
        pass
    stop.set()


class Handed:
    """Bodies handed over by the load: each kept as the bytes it came in until the relay asks for it,
    then parsed (parsing a batch's bodies at once left the helper holding tens of megabytes of
    dicts while it sent them). A row the relay asked for before its body came was rendered by the
    relay: its body is not kept when it comes (else the bodies of rendered rows would fill the room
    and leave none for the later ones)."""

    MISSED = 20_000  # keys asked for and not yet here, remembered (the oldest forgotten first)

    def __init__(self, limit: int = HANDED_BYTES):
        self.limit, self.held = limit, 0
        self.given = 0  # bodies taken
        self._lock = threading.Lock()
        self._bodies: dict[str, bytes] = {}  # idempotency key -> its body's JSON
        # In the order asked. An OrderedDict: forgetting the oldest of a plain dict (`next(iter(d))`)
        # walks past every key deleted before it, a few us a key once the relay misses many.
        self._missed: OrderedDict[str, None] = OrderedDict()

    def add(self, message: bytes) -> None:
        """One message: a line per body, its idempotency key, a tab, its JSON (which has no line break)."""
        with self._lock:
            if self.held + len(message) > self.limit:  # rendered by the relay, as without a hand-over
                return
            for line in message.split(b"\n"):
                key, _, body = line.partition(b"\t")
                key = key.decode()
                if key in self._missed:  # its row was rendered already
                    del self._missed[key]
                    continue
                self._bodies[key] = body
                self.held += _size(key, body)

    def take(self, keys: list[str]) -> dict[str, dict]:
        """idempotency key -> body, for those of `keys` handed over (each is given once)."""
        with self._lock:
            found = {key: body for key in keys if (body := self._bodies.pop(key, None)) is not None}
            self.held -= sum(_size(key, body) for key, body in found.items())
            self.given += len(found)
            self._missed.update(dict.fromkeys(key for key in keys if key not in found))
            while len(self._missed) > self.MISSED:
                self._missed.popitem(last=False)
        return {key: jsonfast.loads(body) for key, body in found.items()}


def _size(key: str, body: bytes) -> int:
    return len(key) + len(body) + 2


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
