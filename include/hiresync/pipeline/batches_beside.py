"""A helper process beside a step that works through the run's staged batches: the machine's other
core for a step that would use one.

The helper reads the run's staged batches itself (it has the key) and does a step's work on two of
every three (`helps`), sending each result as it is done; the step does the others itself and takes
the helper's results in order (`result`), so what the step stages is the same either way
(hiresync.pipeline.map_beside and validate_beside say what each step hands off). Results wait as
the bytes the helper sent, no more than AHEAD at a time: objects built in a receiving thread, ahead
of the step and among its own allocations, kept the process larger through the load
(docs/benchmarks.md). Only the helper this step started writes to the pipe, so unpickling them
trusts no one else.

A helper that stops early (it died, or refused a mapping file that changed since the step read it)
leaves its batches to the step; a step that ends early (a failure) tells the helper to stop, which
it does after its current batch. Starting one costs about a second, so steps start one only for
large runs.
"""

from __future__ import annotations

import pickle
import subprocess
import threading
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection

from hiresync.helper_process import start_helper

EVERY = 3  # of every EVERY batches the helper takes all but the first
AHEAD = 2  # results held for the step at most (the helper blocks on the pipe meanwhile)
STOP_SECONDS = 30  # the most the step waits for the helper to end after the last batch


def helps(index: int) -> bool:
    """Whether the helper does batch number `index`."""
    return index % EVERY != 0


class BatchesBeside:
    """`with BatchesBeside(module, function, *args) as helper:` around a step's batches, the helper
    running `module.function(*args, conn)` (which calls `serve`); `helper.result(i)` is what it sent
    for batch i, or None when the step must do that batch itself (its own, or the helper stopped)."""

    def __init__(self, module: str, function: str, *args):
        self._target = (module, function)
        self._args = args
        self._results: dict[int, bytes] = {}  # batch index -> the pickled result the helper sent
        self._ended = self._closing = False
        self._changed = threading.Condition()

    def __enter__(self) -> "BatchesBeside":
        self._process, self._conn = start_helper(*self._target, *self._args)
        self._receiver = threading.Thread(target=self._receive, name=f"{self._target[0]}-beside", daemon=True)
        self._receiver.start()
        return self

    def _receive(self) -> None:
        """Results as the helper sends them: it works ahead while the step does its own part."""
        try:
            while True:
                with self._changed:  # no further ahead than AHEAD batches: memory stays bounded by them
                    self._changed.wait_for(lambda: len(self._results) < AHEAD or self._closing)
                index = self._conn.recv()
                done = self._conn.recv_bytes()
                with self._changed:
                    if not self._closing:  # else dropped: read only so that the helper can go on to stop
                        self._results[index] = done
                    self._changed.notify_all()
        except (EOFError, OSError):  # it ended: done, refused its work, or died
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def result(self, index: int):
        if not helps(index):  # the step's own batch
            return None
        with self._changed:
            self._changed.wait_for(lambda: index in self._results or self._ended)
            found = self._results.pop(index, None)
            self._changed.notify_all()
        return None if found is None else pickle.loads(found)

    def __exit__(self, *exc) -> None:
        # Told to stop (after its current batch: it may still have some when the step failed), then
        # its end of the pipe closes with it and the receiver sees the end; only then is ours closed.
        # Meanwhile the receiver reads what it still sends: a helper blocked on a full pipe while the
        # receiver waited for the step to take its results would never stop.
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        try:
            self._conn.send("stop")
        except OSError:  # it ended already
            pass
        try:
            self._process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:  # stuck: it holds nothing the run needs
            self._process.kill()
            self._process.wait()
        self._receiver.join()
        self._conn.close()


def serve(conn: Connection, batches: Iterable, work: Callable[[object], object]) -> None:
    """The helper's side: `work(batch)` for each batch it does, sent in order, until the batches
    end or the step says stop (or is gone: poll() is true for a message and for a closed pipe).
    `batches` yields every batch, the step's too: a batch's rows are numbered after all before it."""
    for index, batch in enumerate(batches):
        if conn.poll():
            return
        if helps(index):
            done = pickle.dumps(work(batch), protocol=pickle.HIGHEST_PROTOCOL)
            try:
                conn.send(index)
                conn.send_bytes(done)
            except OSError:
                return
