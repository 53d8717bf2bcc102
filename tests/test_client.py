"""SefariaClient against a throwaway aiohttp server on 127.0.0.1: limits, retries, errors, URL quoting."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sefaria_ingest import __version__
from sefaria_ingest.client import ClientConfig, SefariaClient
from sefaria_ingest.errors import FetchFailed, MalformedResponse
from sefaria_ingest.retry import RetryPolicy, parse_retry_after

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05, jitter=0.5)


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Run `handler` for every GET path; yields the base URL."""
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield f"http://127.0.0.1:{server.port}"


def config(base_url: str, **overrides) -> ClientConfig:
    values = {"base_url": base_url, "requests_per_second": None, "retry": FAST} | overrides
    return ClientConfig(**values)


def json_response(payload: object, status: int = 200, **headers: str) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json",
                        headers=headers)


def scripted(*responses: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Handler answering the n-th hit with responses[n] (the last one repeats); records hit times."""
    hits: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        hits.append(time.monotonic())
        return await responses[min(len(hits), len(responses)) - 1](request)

    return handler, hits


def answer(payload: object, status: int = 200, **headers: str):
    async def respond(request: web.Request) -> web.Response:
        return json_response(payload, status, **headers)

    return respond


def raw(body: bytes, status: int = 200, content_type: str = "application/json"):
    async def respond(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type=content_type)

    return respond


# ---- limits, seen from the server side ----

def test_rate_limit_seen_by_server():
    rate, burst, n = 20.0, 2, 32
    arrivals: list[float] = []

    async def handler(request):
        arrivals.append(time.monotonic())
        return json_response({})

    async def main():
        async with serve(handler) as base:
            cfg = config(base, requests_per_second=rate, burst=burst, max_in_flight=8)
            async with SefariaClient(cfg, book="Genesis") as client:
                await asyncio.gather(*(client.get_json(f"/api/x/{i}") for i in range(n)))

    asyncio.run(main())
    assert len(arrivals) == n
    most_in_one_second = max(sum(1 for t in arrivals if t0 <= t < t0 + 1.0) for t0 in arrivals)
    assert most_in_one_second <= rate * 1.0 + 1 + burst
    assert arrivals[-1] - arrivals[0] >= (n - burst) / rate * 0.9


@pytest.mark.parametrize(("max_in_flight", "max_connections", "expected_peak"), [(3, 8, 3), (10, 2, 2)])
def test_concurrency_caps_seen_by_server(max_in_flight, max_connections, expected_peak):
    state = {"now": 0, "peak": 0}

    async def handler(request):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.05)
        state["now"] -= 1
        return json_response({})

    async def main():
        async with serve(handler) as base:
            cfg = config(base, max_in_flight=max_in_flight, max_connections=max_connections)
            async with SefariaClient(cfg) as client:
                await asyncio.gather(*(client.get_json(f"/api/x/{i}") for i in range(15)))

    asyncio.run(main())
    assert state["peak"] == expected_peak


# ---- retries ----

def test_503_retried_then_success():
    handler, hits = scripted(answer({"error": "busy"}, 503), answer({"error": "busy"}, 503), answer({"ok": 1}))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base), book="Genesis") as client:
            return await client.get_json("/api/v3/texts/Genesis 1", ref="Genesis 1"), client.stats

    (status, body), stats = asyncio.run(main())
    assert (status, body) == (200, {"ok": 1})
    assert len(hits) == 3
    assert (stats.requests, stats.retries) == (3, 2)
    assert stats.errors_by_status == {"503": 2}
    assert stats.bytes > 0 and stats.seconds > 0
    assert "3 requests, 2 retries" in stats.summary()


class RecordingLimiter:
    """An extra limiter as a later machine-wide one would plug in: counts acquires, records penalties."""

    def __init__(self):
        self.acquired = 0
        self.penalties: list[float] = []

    async def acquire(self) -> None:
        self.acquired += 1

    def penalize(self, seconds: float) -> None:
        self.penalties.append(seconds)


def test_429_retry_after_honoured_and_limiters_penalized():
    handler, hits = scripted(answer({"error": "slow down"}, 429, **{"Retry-After": "1"}), answer({"ok": 1}))
    extra = RecordingLimiter()

    async def main():
        async with serve(handler) as base, SefariaClient(config(base), book="Genesis", limiters=[extra]) as client:
            return await client.get_json("/api/v3/texts/Genesis")

    assert asyncio.run(main()) == (200, {"ok": 1})
    assert hits[1] - hits[0] >= 0.95  # FAST backoff alone would wait 0.01 s
    assert extra.penalties == [1.0]
    assert extra.acquired == 2  # before each attempt


def test_async_penalize_is_awaited_on_503_with_retry_after():
    handler, _ = scripted(answer({}, 503, **{"Retry-After": "0"}), answer({"ok": 1}))
    penalties: list[float] = []

    class AsyncPenalty(RecordingLimiter):
        async def penalize(self, seconds: float) -> None:
            await asyncio.sleep(0)
            penalties.append(seconds)

    async def main():
        async with serve(handler) as base, SefariaClient(config(base), limiters=[AsyncPenalty()]) as client:
            return await client.get_json("/api/index")

    assert asyncio.run(main()) == (200, {"ok": 1})
    assert penalties == [0.0]


def test_plain_500_does_not_penalize():
    handler, _ = scripted(answer({}, 500), answer({"ok": 1}))
    extra = RecordingLimiter()

    async def main():
        async with serve(handler) as base, SefariaClient(config(base), limiters=[extra]) as client:
            return await client.get_json("/api/index")

    assert asyncio.run(main()) == (200, {"ok": 1})
    assert extra.penalties == []


def test_gives_up_after_max_attempts_naming_book_and_ref():
    handler, hits = scripted(answer({"error": "down"}, 503))
    policy = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.02)

    async def main():
        async with serve(handler) as base, SefariaClient(config(base, retry=policy), book="Berakhot") as client:
            await client.get_json("/api/v3/texts/Berakhot 2a", ref="Berakhot 2a")

    with pytest.raises(FetchFailed) as info:
        asyncio.run(main())
    assert len(hits) == 3
    assert (info.value.book, info.value.ref) == ("Berakhot", "Berakhot 2a")
    assert "Berakhot" in str(info.value) and "Berakhot 2a" in str(info.value)
    assert "HTTP 503 after 3 attempts" in str(info.value)


def test_request_timeout_retried():
    async def slow(request):
        await asyncio.sleep(3)
        return json_response({"late": True})

    handler, hits = scripted(slow, answer({"ok": 1}))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base, request_timeout=0.2)) as client:
            return await client.get_json("/api/index"), client.stats

    start = time.monotonic()
    result, stats = asyncio.run(main())
    assert result == (200, {"ok": 1})
    assert len(hits) == 2
    assert stats.errors_by_status == {"timeout": 1}
    assert time.monotonic() - start < 2.5


def test_connection_reset_mid_body_retried():
    async def reset(request):
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 5000
        await response.prepare(request)
        await response.write(b'{"text": ["In the beginning')
        request.transport.close()
        return response

    handler, hits = scripted(reset, answer({"ok": 1}))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base)) as client:
            return await client.get_json("/api/index"), client.stats

    result, stats = asyncio.run(main())
    assert result == (200, {"ok": 1})
    assert len(hits) == 2
    assert sum(stats.errors_by_status.values()) == 1
    assert set(stats.errors_by_status) <= {"payload", "connection"}


def test_total_timeout_bounds_retries_and_slow_answers():
    long_wait, _ = scripted(answer({}, 503, **{"Retry-After": "5"}))

    async def hang(request):
        await asyncio.sleep(5)
        return json_response({})

    async def attempt(handler):
        async with serve(handler) as base:
            cfg = config(base, total_timeout=0.4, request_timeout=30)
            async with SefariaClient(cfg, book="Genesis") as client:
                await client.get_json("/api/v3/texts/Genesis 1", ref="Genesis 1")

    for handler in (long_wait, hang):
        start = time.monotonic()
        with pytest.raises(FetchFailed, match="total timeout") as info:
            asyncio.run(attempt(handler))
        assert time.monotonic() - start < 1.5
        assert info.value.ref == "Genesis 1"


# ---- bodies: JSON, truncation, error statuses ----

def test_404_json_is_returned_not_raised():
    error = {"error": "Could not find title in reference: Genesiz 1"}
    handler, hits = scripted(answer(error, 404))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base)) as client:
            return await client.get_json("/api/v3/texts/Genesiz 1")

    assert asyncio.run(main()) == (404, error)
    assert len(hits) == 1


def test_error_status_with_non_json_body_is_malformed():
    handler, hits = scripted(raw(b"<html>Not Found</html>", 404, "text/html"))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base), book="Genesis") as client:
            await client.get_json("/api/v3/texts/Genesis 99", ref="Genesis 99")

    with pytest.raises(MalformedResponse, match="404") as info:
        asyncio.run(main())
    assert (info.value.book, info.value.ref) == ("Genesis", "Genesis 99")
    assert len(hits) == 1


@pytest.mark.parametrize("bad", [raw(b'{"text": ["In the beginning'), raw(b"<html>maintenance</html>", 200, "text/html")])
def test_bad_2xx_body_retried_then_success(bad):
    handler, hits = scripted(bad, answer({"text": ["In the beginning"]}))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base)) as client:
            return await client.get_json("/api/index"), client.stats

    result, stats = asyncio.run(main())
    assert result == (200, {"text": ["In the beginning"]})
    assert len(hits) == 2
    assert stats.errors_by_status == {"bad_json": 1}


@pytest.mark.parametrize("bad", [raw(b'{"text": ["In the beginning'), raw(b"<html>maintenance</html>", 200, "text/html")])
def test_always_bad_2xx_body_ends_in_malformed_response(bad):
    handler, hits = scripted(bad)

    async def main():
        async with serve(handler) as base, SefariaClient(config(base), book="Genesis") as client:
            await client.get_json("/api/v3/texts/Genesis 1", ref="Genesis 1")

    with pytest.raises(MalformedResponse) as info:
        asyncio.run(main())
    assert len(hits) == FAST.max_attempts
    assert (info.value.book, info.value.ref) == ("Genesis", "Genesis 1")
    assert f"after {FAST.max_attempts} attempts" in str(info.value)


# ---- URLs ----

REFS = [
    "Pesach Haggadah, Magid, Ha Lachma Anya 2",
    "Ha'amek Davar on Genesis 1:1",
    "בראשית א:א",
    "Odd ?#%+&;= ref",
]


@pytest.mark.parametrize("prefix", ["", "/mirror", "/mirror/"])
def test_refs_reach_the_server_exactly(prefix):
    async def echo(request):
        return json_response({"path": request.path, "raw": request.raw_path})

    async def main():
        async with serve(echo) as base, SefariaClient(config(base + prefix)) as client:
            return [await client.get_json(f"/api/v3/texts/{ref}", ref=ref) for ref in REFS]

    for ref, (status, seen) in zip(REFS, asyncio.run(main())):
        assert status == 200
        assert seen["path"] == f"{prefix.rstrip('/')}/api/v3/texts/{ref}"
        assert seen["raw"].isascii() and " " not in seen["raw"] and "?" not in seen["raw"]


def test_query_params_encoded_like_real_clients():
    async def echo(request):
        return json_response({"query": list(request.query.items()), "raw": request.rel_url.raw_query_string})

    versions = [("version", "hebrew|Miqra according to the Masorah"), ("version", "english|The Koren Jerusalem Bible")]

    async def main():
        async with serve(echo) as base, SefariaClient(config(base)) as client:
            _, listed = await client.get_json("/api/v3/texts/Genesis 1", versions)
            _, mapped = await client.get_json("/api/texts/Genesis 1", {"context": 0, "pad": 0})
            return listed, mapped

    listed, mapped = asyncio.run(main())
    assert [tuple(kv) for kv in listed["query"]] == versions
    assert "%7C" in listed["raw"] and "|" not in listed["raw"]
    assert [tuple(kv) for kv in mapped["query"]] == [("context", "0"), ("pad", "0")]


def test_user_agent_names_the_project():
    async def echo(request):
        return json_response({"ua": request.headers.get("User-Agent")})

    async def main():
        async with serve(echo) as base, SefariaClient(config(base)) as client:
            return await client.get_json("/api/index")

    assert asyncio.run(main()) == (200, {"ua": f"sefaria-ingest/{__version__}"})


# ---- get_bytes ----

def test_get_bytes_returns_the_exact_body_after_a_retry():
    payload = os.urandom(200_000)
    handler, hits = scripted(raw(b"", 502), raw(payload, 200, "application/octet-stream"))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base)) as client:
            return await client.get_bytes("/sefaria-export/json/Tanakh/Torah/Genesis/Hebrew/merged.json"), client.stats

    body, stats = asyncio.run(main())
    assert body == payload
    assert len(hits) == 2
    assert stats.bytes >= len(payload)


def test_get_bytes_404_raises_fetch_failed():
    handler, hits = scripted(raw(b"no such object", 404, "text/plain"))

    async def main():
        async with serve(handler) as base, SefariaClient(config(base), book="Genesis") as client:
            await client.get_bytes("/schemas/Genesis.json")

    with pytest.raises(FetchFailed, match="HTTP 404 for /schemas/Genesis.json") as info:
        asyncio.run(main())
    assert info.value.book == "Genesis"
    assert len(hits) == 1


# ---- configuration ----

@pytest.mark.parametrize("base_url", ["ftp://example.org", "www.sefaria.org", "", "http://", "file:///tmp/x",
                                      "https://www.sefaria.org/?x=1"])
def test_base_url_must_be_http(base_url):
    with pytest.raises(ValueError, match="base_url"):
        ClientConfig(base_url=base_url)


def test_config_defaults_are_polite_and_from_dict_builds_the_policy():
    default = ClientConfig()
    assert default.requests_per_second <= 2 and default.max_in_flight <= 4
    cfg = ClientConfig.from_dict({"base_url": "http://127.0.0.1:1", "burst": 3,
                                  "retry": {"max_attempts": 2, "retry_statuses": [503]}})
    assert cfg.burst == 3
    assert cfg.retry == RetryPolicy(max_attempts=2, retry_statuses=frozenset({503}))
    with pytest.raises(ValueError, match="rps"):
        ClientConfig.from_dict({"rps": 3})
    with pytest.raises(ValueError, match="tries"):
        ClientConfig.from_dict({"retry": {"tries": 3}})
    with pytest.raises(ValueError, match="max_in_flight"):
        ClientConfig(max_in_flight=0)


def test_client_outside_async_with_refuses():
    async def main():
        await SefariaClient(config("http://127.0.0.1:9")).get_json("/api/index")

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(main())


# ---- retry policy ----

def test_backoff_grows_exponentially_with_bounded_jitter():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30.0, jitter=0.5)
    for attempt in range(1, 10):
        ceiling = min(0.5 * 2 ** (attempt - 1), 30.0)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > 0  # jitter actually varies
    assert RetryPolicy(jitter=0.0).delay(3) == 2.0


def test_retry_after_wins_but_is_capped():
    policy = RetryPolicy(retry_after_max=120.0)
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(6, retry_after=0.0) == 0.0
    assert policy.delay(1, retry_after=3600.0) == 120.0


def test_parse_retry_after_seconds_and_http_dates():
    now = datetime(2025, 3, 2, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after("Sun, 02 Mar 2025 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Sun, 02 Mar 2025 11:00:00 GMT", now=now) == 0.0  # already past
    for unreadable in (None, "", "soon", "-5", "nan"):
        assert parse_retry_after(unreadable) is None


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)
