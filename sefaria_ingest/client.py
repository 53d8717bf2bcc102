"""Async HTTP client for the Sefaria API and export: one bounded, rate-limited, retrying session per job."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from yarl import URL

from sefaria_ingest import __version__
from sefaria_ingest.errors import FetchFailed, MalformedResponse
from sefaria_ingest.ratelimit import Limiter, Penalizable, TokenBucket
from sefaria_ingest.retry import RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)

# RFC 3986 path characters other than '/': commas, colons and apostrophes of refs stay readable,
# everything else (space, '?', '#', '%', Hebrew) is percent-encoded as UTF-8.
_PATH_SAFE = "!$&'()*+,;=:@-._~"
# Statuses whose Retry-After is a request to the whole client, not just to this one request.
_PENALTY_STATUSES = frozenset({429, 503})

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]
T = TypeVar("T")


@dataclass(slots=True)
class ClientConfig:
    """HTTP knobs of one job; the defaults are polite to Sefaria (2 req/s, 4 in flight)."""

    base_url: str = "https://www.sefaria.org"
    requests_per_second: float | None = 2.0
    burst: int = 2
    max_in_flight: int = 4
    max_connections: int = 8
    request_timeout: float = 60.0
    total_timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = f"sefaria-ingest/{__version__}"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        _parse_base_url(self.base_url)
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {self.max_connections}")
        if not self.request_timeout > 0:
            raise ValueError(f"request_timeout must be > 0 seconds, got {self.request_timeout}")
        if self.total_timeout is not None and not self.total_timeout > 0:
            raise ValueError(f"total_timeout must be > 0 seconds or None, got {self.total_timeout}")
        if not isinstance(self.retry, RetryPolicy):
            raise ValueError(f"retry must be a RetryPolicy, got {type(self.retry).__name__}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClientConfig:
        """Build from a config/profile mapping; `retry` may itself be a mapping of RetryPolicy fields."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown client settings: {', '.join(unknown)}")
        values = dict(values)
        retry = values.get("retry")
        if isinstance(retry, Mapping):
            retry_known = {f.name for f in fields(RetryPolicy)}
            retry_unknown = sorted(set(retry) - retry_known)
            if retry_unknown:
                raise ValueError(f"unknown retry settings: {', '.join(retry_unknown)}")
            values["retry"] = RetryPolicy(**retry)
        return cls(**values)


@dataclass(slots=True)
class ClientStats:
    """What one client did: HTTP attempts, retries, body bytes, failures by status or kind, wall seconds."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    errors_by_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    started_at: float = 0.0  # wall-clock (epoch) time the session opened
    per_second: list[int] = field(default_factory=list)  # requests sent in each second since then, for plots

    def summary(self) -> str:
        """One line for logs and the fetch CLI."""
        errors = ", ".join(f"{k}={v}" for k, v in sorted(self.errors_by_status.items())) or "none"
        return (
            f"{self.requests} requests, {self.retries} retries, {self.bytes} bytes, "
            f"errors: {errors}, {self.seconds:.1f} s"
        )


@dataclass(slots=True)
class _Reply:
    status: int
    content_type: str
    body: bytes
    retry_after: str | None


class _Retryable(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, cause: str, *, status: int | None = None, retry_after: float | None = None,
                 malformed: bool = False):
        super().__init__(cause)
        self.cause = cause
        self.status = status
        self.retry_after = retry_after
        self.malformed = malformed


class SefariaClient:
    """`async with SefariaClient(config, book=...) as client:` owns one ClientSession for the job."""

    def __init__(self, config: ClientConfig, *, book: str | None = None, limiters: Iterable[Limiter] = ()):
        config.validate()
        self.config = config
        self.book = book
        self.stats = ClientStats()
        self._base = _parse_base_url(config.base_url)
        self._limiters: tuple[Limiter, ...] = (
            TokenBucket(config.requests_per_second, config.burst),
            *limiters,
        )
        self._in_flight = asyncio.Semaphore(config.max_in_flight)
        self._session: aiohttp.ClientSession | None = None
        self._started = time.monotonic()

    async def __aenter__(self) -> SefariaClient:
        if self._session is not None:
            raise RuntimeError("SefariaClient is already open")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.config.max_connections),
            timeout=aiohttp.ClientTimeout(total=self.config.request_timeout),
            headers={"User-Agent": self.config.user_agent},
        )
        self._started = time.monotonic()
        self.stats.started_at = time.time()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        session, self._session = self._session, None
        self._tick()
        if session is not None:
            await session.close()

    def url(self, path: str, params: Params | None = None) -> URL:
        """base_url + path, each path segment percent-encoded (refs may hold spaces, '?', Hebrew)."""
        segments = path.lstrip("/").split("/")
        raw_path = self._base.raw_path.rstrip("/") + "/" + "/".join(quote(s, safe=_PATH_SAFE) for s in segments)
        query = urlencode(params, doseq=True, quote_via=quote, safe="") if params else ""
        return URL.build(
            scheme=self._base.scheme,
            authority=self._base.raw_authority,
            path=raw_path,
            query_string=query,
            encoded=True,
        )

    async def get_json(self, path: str, params: Params | None = None, *, ref: str | None = None) -> tuple[int, object]:
        """(status, parsed body); 2xx and non-retryable statuses (400, 404…) are returned, not raised."""
        url = self.url(path, params)
        return await self._with_retries(url, ref, {"Accept": "application/json"},
                                        lambda reply: self._accept_json(reply, ref))

    async def get_bytes(self, path: str, *, ref: str | None = None) -> bytes:
        """Body of a 2xx answer (export files); any other non-retryable status raises FetchFailed."""
        url = self.url(path)
        return await self._with_retries(url, ref, {}, lambda reply: self._accept_bytes(reply, path, ref))

    async def _with_retries(self, url: URL, ref: str | None, headers: Mapping[str, str],
                            accept: Callable[[_Reply], T]) -> T:
        policy = self.config.retry
        attempts = 0
        last: _Retryable | None = None
        try:
            async with asyncio.timeout(self.config.total_timeout):
                while True:
                    attempts += 1
                    try:
                        return accept(await self._attempt(url, headers, ref))
                    except _Retryable as exc:
                        last = exc
                    if attempts >= policy.max_attempts:
                        break
                    delay = policy.delay(attempts, last.retry_after)
                    if last.retry_after is not None and last.status in _PENALTY_STATUSES:
                        await self._penalize(delay)
                    self.stats.retries += 1
                    log.warning("%s: %s from %s; retry %d/%d in %.2f s", self.book or "?", last.cause, url,
                                attempts, policy.max_attempts - 1, delay)
                    await asyncio.sleep(delay)
        except TimeoutError:
            cause = f"total timeout of {self.config.total_timeout:g} s reached after {_n_attempts(attempts)}"
            if last is not None:
                cause += f" (last failure: {last.cause})"
            raise FetchFailed(self.book, cause, ref=ref) from None
        finally:
            self._tick()
        error = MalformedResponse if last.malformed else FetchFailed
        raise error(self.book, f"{last.cause} after {_n_attempts(attempts)}", ref=ref)

    async def _attempt(self, url: URL, headers: Mapping[str, str], ref: str | None) -> _Reply:
        """One HTTP exchange under the in-flight cap and every rate limiter."""
        if self._session is None:
            raise RuntimeError("SefariaClient must be used as `async with SefariaClient(...) as client`")
        async with self._in_flight:
            for limiter in self._limiters:
                await limiter.acquire()
            self.stats.requests += 1
            second = int(time.monotonic() - self._started)
            timeline = self.stats.per_second
            timeline.extend([0] * (second + 1 - len(timeline)))
            timeline[second] += 1
            try:
                async with self._session.get(url, headers=headers) as resp:
                    body = await resp.read()
                    reply = _Reply(resp.status, resp.content_type, body, resp.headers.get("Retry-After"))
            except TimeoutError:
                self._count_error("timeout")
                raise _Retryable(f"no complete answer within {self.config.request_timeout:g} s") from None
            except aiohttp.ClientPayloadError as exc:
                self._count_error("payload")
                raise _Retryable(f"broken response body ({exc})") from None
            except aiohttp.ClientConnectionError as exc:
                self._count_error("connection")
                raise _Retryable(f"connection error ({type(exc).__name__}: {exc})") from None
            except aiohttp.ClientError as exc:
                raise FetchFailed(self.book, f"{type(exc).__name__} for {url}: {exc}", ref=ref) from exc
        self.stats.bytes += len(body)
        if not 200 <= reply.status < 300:
            self._count_error(str(reply.status))
        return reply

    def _accept_json(self, reply: _Reply, ref: str | None) -> tuple[int, object]:
        self._raise_if_retry_status(reply)
        ok = 200 <= reply.status < 300
        if ok and not _is_json_type(reply.content_type):
            self._count_error("bad_json")
            raise _Retryable(f"HTTP {reply.status} with non-JSON content type {reply.content_type!r}",
                             malformed=True)
        try:
            return reply.status, orjson.loads(reply.body)
        except orjson.JSONDecodeError as exc:
            cause = f"HTTP {reply.status} body of {len(reply.body)} bytes is not valid JSON ({exc})"
            if not ok and not _is_json_type(reply.content_type):  # JSON promised but cut: transient
                raise MalformedResponse(self.book, cause, ref=ref) from None
            self._count_error("bad_json")
            raise _Retryable(cause, malformed=True) from None

    def _accept_bytes(self, reply: _Reply, path: str, ref: str | None) -> bytes:
        self._raise_if_retry_status(reply)
        if not 200 <= reply.status < 300:
            raise FetchFailed(self.book, f"HTTP {reply.status} for {path}", ref=ref)
        return reply.body

    def _raise_if_retry_status(self, reply: _Reply) -> None:
        if reply.status in self.config.retry.retry_statuses:
            raise _Retryable(f"HTTP {reply.status}", status=reply.status,
                             retry_after=parse_retry_after(reply.retry_after))

    async def _penalize(self, seconds: float) -> None:
        for limiter in self._limiters:
            if isinstance(limiter, Penalizable):
                result = limiter.penalize(seconds)
                if inspect.isawaitable(result):
                    await result

    def _count_error(self, key: str) -> None:
        self.stats.errors_by_status[key] = self.stats.errors_by_status.get(key, 0) + 1

    def _tick(self) -> None:
        self.stats.seconds = time.monotonic() - self._started


def _parse_base_url(base_url: str) -> URL:
    problem = f"base_url must be an http(s) URL such as 'https://www.sefaria.org', got {base_url!r}"
    try:
        url = URL(base_url)
    except (TypeError, ValueError):
        raise ValueError(problem) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(problem)
    if url.raw_query_string or url.raw_fragment:
        raise ValueError(f"base_url must not carry a query or fragment, got {base_url!r}")
    return url


def _is_json_type(content_type: str) -> bool:
    return content_type in ("application/json", "text/json") or content_type.endswith("+json")


def _n_attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"
