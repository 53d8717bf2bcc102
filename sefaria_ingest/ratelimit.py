"""Request-rate limiting: a per-job asyncio token bucket and the protocol other limiters follow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Limiter(Protocol):
    """Anything the client awaits before each HTTP attempt (the per-job bucket, a machine-wide limiter)."""

    async def acquire(self) -> None: ...


@runtime_checkable
class Penalizable(Protocol):
    """Optional extra of a Limiter: the server asked everyone to wait `seconds` (429/503 + Retry-After).

    May return None or an awaitable; the client awaits the latter.
    """

    def penalize(self, seconds: float) -> None | Awaitable[None]: ...


class TokenBucket:
    """At most `rate` acquisitions per second on average and `burst` back to back; rate None or <= 0: unlimited."""

    def __init__(self, rate: float | None, burst: int = 1):
        if burst < 1:
            raise ValueError(f"token bucket burst must be >= 1, got {burst}")
        self.rate: float | None = rate if rate is not None and rate > 0 else None
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._paused_until = 0.0
        # The lock queues waiters in arrival order, so nobody starves and wake-ups don't stampede.
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a request may be sent, then take its token."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if self.rate is None:
                    return
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    def penalize(self, seconds: float) -> None:
        """Send nothing for `seconds`, and resume at the plain rate rather than with a saved-up burst."""
        now = time.monotonic()
        self._paused_until = max(self._paused_until, now + max(seconds, 0.0))
        if self.rate is not None:
            self._refill(now)
            self._tokens = min(self._tokens, 1.0)
            self._updated = max(self._updated, self._paused_until)

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
