"""One retry policy for every HTTP call: which failures to retry and how long to wait between tries."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a server's Retry-After (capped) overrides the backoff."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retry_after_max: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"retry.max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ValueError("retry.backoff_base, backoff_max and retry_after_max must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"retry.jitter is a fraction in [0, 1], got {self.jitter}")
        # Config files give a list; the policy is hashable and frozen, so store a frozenset.
        object.__setattr__(self, "retry_statuses", frozenset(int(s) for s in self.retry_statuses))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next one."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        ceiling = min(self.backoff_base * 2.0 ** (max(attempt, 1) - 1), self.backoff_max)
        # Jitter only shortens the wait, so backoff_max stays a true maximum while
        # clients that failed together spread out.
        return ceiling * (1.0 - self.jitter * random.random())


def parse_retry_after(header: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if absent or unreadable."""
    if header is None:
        return None
    value = header.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)
