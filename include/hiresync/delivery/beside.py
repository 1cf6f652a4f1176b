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
still stored either way: an erased payload's row is never sent). Bodies travel and wait compressed,
a message at a time: on SQLite the relay falls behind the load (its claims wait for the load's
batch transactions), and every body it has no room for is one it renders itself.

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
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import zstandard

from hiresync import jsonfast
from hiresync.config.settings import Settings
from hiresync.helper_process import start_helper
from hiresync.privacy.pii import Keyring

log = logging.getLogger(__name__)
IDLE_SECONDS = 0.2  # between looks at the outbox when nothing was due
STOP_SECONDS = 120  # the most the load waits for the helper's last batch before it stops it hard
# The most handed bodies the helper keeps waiting, as compressed bytes (a body is about a kilobyte
# of JSON, a message of them compresses about 7:1): a relay that falls behind renders the later rows
# itself rather than growing beside the load.
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
        self._outgoing: queue.SimpleQueue[tuple[list[str], bytes] | bytes | None] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send, daemon=True)
        self._compressor = zstandard.ZstdCompressor(level=1)  # the sender thread's alone

    def __enter__(self) -> "RelayBeside":
        self._process, self._conn = start_helper(__name__, "_serve", self.settings, self.keys, self.targets)
        self._sender.start()
        return self

    def hand(self, bodies: dict[str, dict]) -> None:
        """Outbox idempotency key -> the body of that row, for rows just committed."""
        items = list(bodies.items())
        for i in range(0, len(items), HAND_BODIES):
            part = items[i:i + HAND_BODIES]
            self._outgoing.put(([key for key, _ in part], b"\n".join(jsonfast.dumpb(body) for _, body in part)))

    def _send(self) -> None:
        while (item := self._outgoing.get()) is not None:
            # Compressed here, in the thread that sends, not in the load's.
            message = item if isinstance(item, bytes) else pack(*item, self._compressor)
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


def pack(keys: list[str], bodies: bytes, compressor: zstandard.ZstdCompressor) -> bytes:
    """One message of handed bodies: their idempotency keys, a line each, then a NUL and the bodies'
    JSON (a line each, in the keys' order), compressed. The keys stay readable so that the helper
    can file a message without decompressing it."""
    return "\n".join(keys).encode() + b"\0" + compressor.compress(bodies)


@dataclass(slots=True)
class _Message:
    bodies: bytes  # compressed, a line each
    size: int      # what it counts against the limit
    left: int      # how many of its bodies are still to be taken


class Handed:
    """Bodies handed over by the load, kept as the compressed messages they came in until the relay
    asks for them; each message is decompressed when the relay takes bodies from it, and let go once
    every body in it is taken (the relay claims rows in about the order the load wrote them, so a
    message is seldom held long for one body). A row the relay asked for before its body came was
    rendered by the relay: its body is not kept when it comes (else the bodies of rendered rows would
    fill the room and leave none for the later ones)."""

    MISSED = 20_000  # keys asked for and not yet here, remembered (the oldest forgotten first)

    def __init__(self, limit: int = HANDED_BYTES):
        self.limit, self.held = limit, 0
        self.given = 0  # bodies taken
        self._lock = threading.Lock()
        self._messages: dict[int, _Message] = {}
        self._where: dict[str, tuple[int, int]] = {}  # idempotency key -> (its message, its line there)
        self._next = 0
        self._decompressor = zstandard.ZstdDecompressor()  # used under the lock only
        # In the order asked. An OrderedDict: forgetting the oldest of a plain dict (`next(iter(d))`)
        # walks past every key deleted before it, a few us a key once the relay misses many.
        self._missed: OrderedDict[str, None] = OrderedDict()

    def add(self, message: bytes) -> None:
        """One message as `pack` made it."""
        with self._lock:
            if self.held + len(message) > self.limit:  # rendered by the relay, as without a hand-over
                return
            head, _, bodies = message.partition(b"\0")
            keys = head.decode().split("\n")
            wanted = []
            for line, key in enumerate(keys):
                if key in self._missed:  # its row was rendered already
                    del self._missed[key]
                else:
                    wanted.append((key, line))
            if not wanted:
                return
            number, self._next = self._next, self._next + 1
            self._messages[number] = _Message(bodies, len(message), len(wanted))
            self._where.update((key, (number, line)) for key, line in wanted)
            self.held += len(message)

    def take(self, keys: list[str]) -> dict[str, dict]:
        """idempotency key -> body, for those of `keys` handed over (each is given once)."""
        found: dict[str, bytes] = {}
        with self._lock:
            by_message: dict[int, list[tuple[str, int]]] = {}
            for key in keys:
                if (place := self._where.pop(key, None)) is not None:
                    by_message.setdefault(place[0], []).append((key, place[1]))
                else:
                    self._missed[key] = None
            for number, wanted in by_message.items():
                message = self._messages[number]
                lines = self._decompressor.decompress(message.bodies).split(b"\n")
                found.update((key, lines[line]) for key, line in wanted)
                message.left -= len(wanted)
                if not message.left:
                    del self._messages[number]
                    self.held -= message.size
            self.given += len(found)
            while len(self._missed) > self.MISSED:
                self._missed.popitem(last=False)
        return {key: jsonfast.loads(body) for key, body in found.items()}


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
