"""Scripted faults for vendor simulators: "the 2nd and 3rd request to /x get a 503", "cut the
next body in half", "revoke every token before the 3rd page".

A mixin placed before ``SimServer`` in a simulator's bases. With nothing scheduled it changes
nothing, so existing simulators keep their behaviour. Faults are matched per path and in the
order they were scheduled; ``skip`` lets a fault wait for the n-th request (e.g. between pages).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from simulators.server import Request, Response, error_response


@dataclass
class _Fault:
    path: str
    kind: str                 # "status" | "truncate" | "action"
    skip: int                 # requests to the path to let through first
    count: int                # how many requests the fault hits
    status: int = 503
    retry_after: int | None = None
    action: Callable[[], object] | None = None


class FaultKnobs:
    """``fail``, ``truncate`` and ``before`` schedule faults; ``faults_pending`` says what is left."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._faults: list[_Fault] = []
        self._faults_lock = threading.Lock()

    def fail(self, path: str, status: int, count: int = 1, *, skip: int = 0,
             retry_after: int | None = None) -> None:
        """The matching requests get ``status`` (429, 5xx) before the handler runs."""
        self._schedule(_Fault(path, "status", skip, count, status, retry_after))

    def truncate(self, path: str, count: int = 1, *, skip: int = 0) -> None:
        """The matching successful responses lose the second half of their body (a cut proxy)."""
        self._schedule(_Fault(path, "truncate", skip, count))

    def before(self, path: str, action: Callable[[], object], *, skip: int = 0) -> None:
        """Run ``action`` just before the (skip+1)-th request to ``path`` is handled."""
        self._schedule(_Fault(path, "action", skip, 1, action=action))

    @property
    def faults_pending(self) -> int:
        with self._faults_lock:
            return sum(f.count for f in self._faults)

    def _schedule(self, fault: _Fault) -> None:
        if fault.count < 1 or fault.skip < 0:
            raise ValueError("count must be >= 1 and skip >= 0")
        with self._faults_lock:
            self._faults.append(fault)

    def _take_fault(self, path: str) -> _Fault | None:
        with self._faults_lock:
            hit = None
            for fault in self._faults:
                if fault.path != path:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if hit is None:
                    hit = fault
            if hit is not None:
                hit.count -= 1
                if hit.count == 0:
                    self._faults.remove(hit)
            return hit

    def _serve(self, request: Request) -> Response:
        fault = self._take_fault(request.path)
        if fault is not None and fault.kind == "status":
            with self._counts_lock:  # counted like any other request the server saw
                self._counts[request.path] += 1
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return error_response(fault.status, "injected_fault", headers=headers)
        if fault is not None and fault.kind == "action":
            fault.action()
        response = super()._serve(request)
        if fault is not None and fault.kind == "truncate" and response.status == 200:
            return Response(response.status, response.body[: len(response.body) // 2], response.headers)
        return response
