"""What clients did to the replica, seen from the server: requests by route and status, peaks, bytes."""

from __future__ import annotations

import time
from collections import deque

from aiohttp import web

CONTROL_PREFIX = "/_replica/"


class Stats:
    """Counters kept per request in O(1) (amortised), so measuring does not slow what is measured."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.started = self._clock()
        self.total = 0
        self.by_route: dict[str, dict[str, int]] = {}
        self.peak_in_flight = self.in_flight
        self.peak_per_second = 0
        self.bytes_sent = 0
        self.per_second: list[int] = []
        self._window: deque[float] = deque()

    def begin(self) -> None:
        """A request arrived."""
        now = self._clock()
        self.total += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        window = self._window
        window.append(now)
        while window[0] <= now - 1.0:
            window.popleft()
        self.peak_per_second = max(self.peak_per_second, len(window))
        second = int(now - self.started)
        if second >= len(self.per_second):
            self.per_second.extend([0] * (second + 1 - len(self.per_second)))
        self.per_second[second] += 1

    def end(self, route: str, status: int, nbytes: int) -> None:
        """A request was answered with `status` and a body of `nbytes`."""
        self.in_flight -= 1
        counts = self.by_route.setdefault(route, {})
        key = str(status)
        counts[key] = counts.get(key, 0) + 1
        self.bytes_sent += nbytes

    def snapshot(self) -> dict:
        return {
            "requests_total": self.total,
            "requests_by_route": {route: dict(sorted(c.items())) for route, c in sorted(self.by_route.items())},
            "peak_requests_per_second": self.peak_per_second,
            "peak_in_flight": self.peak_in_flight,
            "in_flight": self.in_flight,
            "bytes_sent": self.bytes_sent,
            "requests_per_second": list(self.per_second),
            "elapsed_s": round(self._clock() - self.started, 3),
        }


def route_name(request: web.Request) -> str:
    route = request.match_info.route
    return (route.name if route is not None else None) or "unmatched"


def stats_middleware(stats: Stats):
    """Counts every request except the replica's own control routes (/_replica/...)."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        stats.begin()
        status, nbytes = 500, 0
        try:
            response = await handler(request)
            status = response.status
            body = getattr(response, "body", None)
            nbytes = len(body) if isinstance(body, (bytes, bytearray)) else (response.content_length or 0)
            return response
        except web.HTTPException as exc:
            status = exc.status
            nbytes = len(exc.text.encode()) if exc.text else 0
            raise
        finally:
            stats.end(route_name(request), status, nbytes)

    return middleware
