"""Client-side rate limit: a token bucket, so a run stays under the vendor's requests per minute
instead of collecting 429s (which would still be retried, only slower)."""

from __future__ import annotations

import threading
import time
from typing import Callable


class RateLimiter:
    """`per_minute` requests per minute, in bursts of at most `per_minute / 60` (at least 1)."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = per_minute / 60.0          # tokens per second
        self.capacity = max(1.0, self.rate)
        self._tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting if the bucket is empty; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            # The token is spent now; the wait pays for it, so the refill clock starts after it.
            self._tokens -= 1
            if wait:
                self._tokens, self._last = 0.0, now + wait
        if wait:
            self._sleep(wait)
        return wait
