"""Fault injection for the replica: the failures a far, busy server produces, seeded so a test can replay them.

`--faults "429=0.05,5xx=0.1,timeout=0.02,reset=0.02,truncate=0.01,seed=7"` on the replica's command line,
`make_app(..., faults=FaultSpec(...))` from Python, or `POST /_replica/faults` at run time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from aiohttp import web

from ..refs import TitleIndex

FAULT_PREFIXES = ("/api/", "/export/")
# Fixed order: a draw u in [0, 1) picks the first kind whose cumulative rate exceeds it.
RANDOM_KINDS = ("429", "5xx", "timeout", "reset", "truncate", "error_body", "content_type")
_SHORT_KEYS = {"429": "rate_429", "5xx": "rate_5xx", "timeout": "rate_timeout", "reset": "rate_reset",
               "truncate": "rate_truncate", "error_body": "rate_error_body", "error": "rate_error_body",
               "content_type": "rate_content_type", "slow": "slow_seconds"}
_HTML = {
    500: "<h1>Server Error (500)</h1>",
    502: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
    503: "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
         "<h1>503 Service Temporarily Unavailable</h1></center></body></html>",
    429: "<html><head><title>429 Too Many Requests</title></head><body><center>"
         "<h1>429 Too Many Requests</h1></center></body></html>",
}


@dataclass(slots=True, frozen=True)
class FaultSpec:
    """What to inject: per-request probabilities of each random fault (summing to at most 1), and fixed rules.

    `books` restricts the random faults to requests for those books; `fail_books` are always answered 500;
    `max_rps` answers 429 (Retry-After: 1) to requests past that many per second, all clients together.
    """

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0
    rate_reset: float = 0.0
    rate_truncate: float = 0.0
    rate_error_body: float = 0.0
    rate_content_type: float = 0.0
    seed: int = 0
    retry_after: float = 1.0
    # Past the client's default 60 s request timeout.
    slow_seconds: float = 90.0
    books: tuple[str, ...] = ()
    fail_books: tuple[str, ...] = ()
    max_rps: int | None = None

    def __post_init__(self) -> None:
        for name in ("books", "fail_books"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(t, str) and t for t in value):
                raise ValueError(f"faults: {name} must be a list of book titles, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for kind in RANDOM_KINDS:
            rate = getattr(self, f"rate_{kind}")
            if not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"faults: {kind} is a probability in [0, 1], got {rate!r}")
        if self.total_rate > 1.0 + 1e-9:
            raise ValueError(f"faults: the probabilities add up to {self.total_rate:g}, more than 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"faults: seed must be an integer, got {self.seed!r}")
        if not self.retry_after >= 0 or not self.slow_seconds >= 0:
            raise ValueError("faults: retry_after and slow_seconds must be >= 0 seconds")
        if self.max_rps is not None and (isinstance(self.max_rps, bool) or not isinstance(self.max_rps, int)
                                         or self.max_rps < 1):
            raise ValueError(f"faults: max_rps must be an integer >= 1, got {self.max_rps!r}")

    @property
    def total_rate(self) -> float:
        return sum(getattr(self, f"rate_{kind}") for kind in RANDOM_KINDS)

    @property
    def active(self) -> bool:
        return self.total_rate > 0 or bool(self.fail_books) or self.max_rps is not None

    @classmethod
    def parse(cls, text: str, **extra: Any) -> FaultSpec:
        """From the compact form `429=0.05,5xx=0.1,seed=7` (also full field names); `extra` adds fields."""
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip()
            name = _SHORT_KEYS.get(key, key)
            if not sep or name not in _NUMBER_FIELDS:
                raise ValueError(f"faults: cannot read {item!r} (expected KIND=PROBABILITY or seed=N, "
                                 f"retry_after=S, slow=S, max_rps=N)")
            try:
                values[name] = int(raw) if name in ("seed", "max_rps") else float(raw)
            except ValueError:
                raise ValueError(f"faults: {key} needs a number, got {raw.strip()!r}") from None
        return cls(**(values | extra))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FaultSpec:
        """From a JSON object with the field names (lists for books); unknown keys are an error."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"faults: unknown settings: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["books"], data["fail_books"] = list(self.books), list(self.fail_books)
        return data


_NUMBER_FIELDS = {f.name for f in fields(FaultSpec)} - {"books", "fail_books"}


class Faults:
    """The injector of one replica app: its spec, a seeded RNG (one draw per eligible request), counters."""

    def __init__(self, spec: FaultSpec | None = None, clock=time.monotonic):
        self._clock = clock
        self._closing = asyncio.Event()
        self._admitted: deque[float] = deque()
        self.injected: dict[str, int] = {}
        self.configure(spec or FaultSpec())

    def configure(self, spec: FaultSpec) -> None:
        """Replace the spec and reseed, so the same spec replays the same faults for the same requests."""
        self.spec = spec
        self._active = spec.active
        self._rng = random.Random(spec.seed)
        self._books = _titles(spec.books)
        self._fail_books = _titles(spec.fail_books)
        self._admitted.clear()

    def reset_counts(self) -> None:
        self.injected = {}

    def snapshot(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "injected": dict(sorted(self.injected.items()))}

    async def on_shutdown(self, app: web.Application) -> None:
        self._closing.set()  # stalled requests end now instead of holding up the server's shutdown

    def middleware(self):
        @web.middleware
        async def inject(request: web.Request, handler):
            if not self._active or not request.path.startswith(FAULT_PREFIXES):
                return await handler(request)
            spec = self.spec
            if spec.max_rps is not None and not self._admit(spec.max_rps):
                return self._count("max_rps", _status_page(429, retry_after=1))
            if spec.fail_books or spec.books:
                named = _book_of(request)
                if spec.fail_books and _matches(self._fail_books, named):
                    return self._count("fail_book", _status_page(500))
                if spec.books and not _matches(self._books, named):
                    return await handler(request)
            kind = self._draw(spec)
            if kind is None:
                return await handler(request)
            return await self._inject(kind, spec, request, handler)

        return inject

    def _admit(self, limit: int) -> bool:
        """Sliding one-second window over the requests let through (rejected ones do not extend a lockout)."""
        now = self._clock()
        window = self._admitted
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True

    def _draw(self, spec: FaultSpec) -> str | None:
        if spec.total_rate <= 0:
            return None
        u = self._rng.random()
        edge = 0.0
        for kind in RANDOM_KINDS:
            edge += getattr(spec, f"rate_{kind}")
            if u < edge:
                return kind
        return None

    async def _inject(self, kind: str, spec: FaultSpec, request: web.Request, handler) -> web.StreamResponse:
        if kind == "429":
            return self._count("429", _status_page(429, retry_after=spec.retry_after))
        if kind == "5xx":
            status = self._rng.choice((500, 502, 503))
            return self._count(str(status), _status_page(status, retry_after=spec.retry_after if status == 503
                                                         else None))
        if kind == "error_body":
            return self._count(kind, web.json_response({"error": "Injected fault: the server answered with an "
                                                                 "error instead of the text."}))
        if kind == "timeout":
            self._count(kind)
            await self._stall(request, spec.slow_seconds)
            return await handler(request)
        response = await handler(request)
        body = getattr(response, "body", None)
        if not isinstance(body, (bytes, bytearray)) or len(body) < 2:
            return response  # nothing to cut (cannot happen for the replica's own routes)
        if kind == "truncate":
            return self._count(kind, web.Response(body=bytes(body[: len(body) // 2]), status=response.status,
                                                  content_type=response.content_type, charset=response.charset))
        if kind == "content_type":
            return self._count(kind, web.Response(body=bytes(body), status=response.status,
                                                  content_type="text/html", charset="utf-8"))
        self._count("reset")
        return await _reset_mid_body(request, response, bytes(body))

    async def _stall(self, request: web.Request, seconds: float) -> None:
        """Hold the answer back for `seconds`; stop early if the client hung up or the server shuts down."""
        deadline = self._clock() + seconds
        while (left := deadline - self._clock()) > 0 and not self._closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(min(left, 0.05))

    def _count(self, kind: str, response: web.StreamResponse | None = None):
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return response


async def _reset_mid_body(request: web.Request, response: web.Response, body: bytes) -> web.StreamResponse:
    """Send the headers and half the body, then reset the TCP connection (RST, not a clean close)."""
    stream = web.StreamResponse(status=response.status)
    stream.content_type = response.content_type
    if response.charset:
        stream.charset = response.charset
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return stream


def _status_page(status: int, retry_after: float | None = None) -> web.Response:
    """An error page as a proxy or Django sends it: HTML, not JSON."""
    headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
    return web.Response(status=status, text=_HTML[status], content_type="text/html", headers=headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _titles(books: tuple[str, ...]) -> TitleIndex[str]:
    index: TitleIndex[str] = TitleIndex()
    for title in books:
        index.add(title, title)
    return index


def _book_of(request: web.Request) -> tuple[str | None, bool]:
    """What the request names: an API route's ref or title, or an export path (folders and file name)."""
    info = request.match_info
    if "path" in info:
        return info["path"], True
    return info.get("tref") or info.get("title"), False


def _matches(titles: TitleIndex[str], named: tuple[str | None, bool]) -> bool:
    """Whether a ref ("Ruth 1:2", "Pesach Haggadah, Magid"), title or export path belongs to one of `titles`."""
    name, is_path = named
    if not name:
        return False
    if is_path:
        return any(part.removesuffix(".json") in titles for part in name.split("/"))
    try:
        titles.resolve(name)
    except KeyError:
        return False
    return True


FAULTS = web.AppKey("faults", Faults)


async def faults_route(request: web.Request) -> web.Response:
    """GET: the spec and counts. POST: a JSON object of FaultSpec fields replaces the spec (and reseeds)."""
    faults = request.app[FAULTS]
    if request.method == "POST":
        try:
            values = await request.json()
            if not isinstance(values, dict):
                raise ValueError("faults: the body must be a JSON object of FaultSpec fields")
            faults.configure(FaultSpec.from_dict(values))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(faults.snapshot())
