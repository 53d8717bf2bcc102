"""Fault injection in the replica: each fault seen by a plain HTTP client, determinism by seed, book rules,
--max-rps, the CLI, and the fetch layer coming through a fault matrix with the records of a fault-free fetch."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import aiohttp
import orjson
import pytest

from sefaria_ingest.client import ClientConfig
from sefaria_ingest.errors import IngestError
from sefaria_ingest.fetch import fetch_book
from sefaria_ingest.replica import ReplicaThread
from sefaria_ingest.replica.faults import FaultSpec
from sefaria_ingest.retry import RetryPolicy
from sefaria_ingest.sources import FetchOptions

REPO = Path(__file__).resolve().parents[1]
RUTH = "/api/v3/texts/Ruth 1"


@pytest.fixture(scope="module")
def faulty(sample_dir):
    """A replica of its own (the session's stays fault-free); each test sets its faults through POST."""
    with ReplicaThread(sample_dir, preload=True) as url:
        yield url


def get(base: str, path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One GET with http.client, so resets, short bodies and stalls surface as they happen."""
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        conn.request("GET", urllib.parse.quote(path, safe="/:,.'"))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def set_faults(base: str, **fields) -> dict:
    status, body = post(base, "/_replica/faults", fields)
    assert status == 200, body
    return body


def post(base: str, path: str, payload: object) -> tuple[int, dict]:
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("POST", path, body=json.dumps(payload), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def stats(base: str) -> dict:
    return json.loads(get(base, "/_replica/stats")[2])


# ---- each fault, seen by a plain HTTP client ----

def test_429_carries_retry_after(faulty):
    set_faults(faulty, rate_429=1.0, retry_after=7)
    status, headers, body = get(faulty, RUTH)
    assert (status, headers["retry-after"]) == (429, "7")
    assert headers["content-type"].startswith("text/html")


def test_5xx_are_500_502_503_and_503_says_when_to_come_back(faulty):
    set_faults(faulty, rate_5xx=1.0, seed=3)
    seen = {}
    for _ in range(40):
        status, headers, _ = get(faulty, RUTH)
        seen.setdefault(status, headers)
    assert set(seen) == {500, 502, 503}
    assert seen[503]["retry-after"] == "1" and "retry-after" not in seen[500]


def test_timeout_stalls_past_the_client_timeout_then_answers(faulty):
    set_faults(faulty)
    normal = get(faulty, RUTH)[2]
    set_faults(faulty, rate_timeout=1.0, slow_seconds=0.6)
    with pytest.raises(TimeoutError):
        get(faulty, RUTH, timeout=0.2)
    started = time.monotonic()
    status, _, body = get(faulty, RUTH)
    assert time.monotonic() - started >= 0.55
    assert (status, body) == (200, normal)


def test_reset_cuts_the_connection_mid_body(faulty):
    set_faults(faulty, rate_reset=1.0)
    parsed = urllib.parse.urlsplit(faulty)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    conn.request("GET", urllib.parse.quote(RUTH))
    try:
        resp = conn.getresponse()
        assert resp.status == 200 and int(resp.getheader("Content-Length")) > 100
        with pytest.raises((ConnectionError, http.client.IncompleteRead)):
            resp.read()
    except ConnectionError:
        pass  # the reset overtook the headers: still a reset in the middle of the answer
    finally:
        conn.close()


def test_truncate_sends_a_consistent_but_cut_json_body(faulty):
    set_faults(faulty)
    normal = get(faulty, RUTH)[2]
    set_faults(faulty, rate_truncate=1.0)
    status, headers, body = get(faulty, RUTH)
    assert status == 200 and int(headers["content-length"]) == len(body)
    assert body == normal[: len(normal) // 2]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)


def test_error_body_is_a_200_with_an_error_field(faulty):
    set_faults(faulty, rate_error_body=1.0)
    status, headers, body = get(faulty, RUTH)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert set(orjson.loads(body)) == {"error"}


def test_wrong_content_type_keeps_the_body(faulty):
    set_faults(faulty)
    normal = get(faulty, RUTH)[2]
    set_faults(faulty, rate_content_type=1.0)
    status, headers, body = get(faulty, RUTH)
    assert (status, body) == (200, normal) and headers["content-type"].startswith("text/html")


def test_export_routes_get_faults_and_control_routes_never(faulty):
    set_faults(faulty, rate_5xx=1.0)
    assert get(faulty, "/export/schemas/Ruth.json")[0] >= 500
    assert get(faulty, "/_replica/stats")[0] == 200
    assert get(faulty, "/_replica/faults")[0] == 200


def test_stats_count_injected_faults_by_kind_and_reset_clears_them(faulty):
    set_faults(faulty)
    post(faulty, "/_replica/reset", {})
    set_faults(faulty, rate_429=0.5, rate_truncate=0.5, seed=11)
    statuses = [get(faulty, RUTH)[0] for _ in range(30)]
    snapshot = stats(faulty)
    assert snapshot["faults_injected"] == {"429": statuses.count(429), "truncate": statuses.count(200)}
    assert snapshot["requests_by_route"]["v3_texts"].get("429", 0) == statuses.count(429)
    post(faulty, "/_replica/reset", {})
    assert stats(faulty)["faults_injected"] == {}


def test_bad_fault_settings_are_refused(faulty):
    set_faults(faulty)
    for payload in ({"rate_429": 2}, {"rate_429": 0.7, "rate_5xx": 0.7}, {"no_such": 1}, [1], {"books": "Ruth"}):
        status, body = post(faulty, "/_replica/faults", payload)
        assert status == 400 and "faults" in body["error"]
    assert get(faulty, RUTH)[0] == 200  # the last good spec (none) stays


# ---- determinism ----

def _statuses(base: str, n: int) -> list[int]:
    return [get(base, RUTH)[0] for _ in range(n)]


def test_same_seed_same_faults_other_seed_other_faults(faulty):
    mix = {"rate_429": 0.1, "rate_5xx": 0.2, "rate_error_body": 0.1, "rate_content_type": 0.1}
    set_faults(faulty, seed=5, **mix)
    first = _statuses(faulty, 60)
    set_faults(faulty, seed=5, **mix)  # posting a spec reseeds: the same requests see the same faults
    assert _statuses(faulty, 60) == first
    set_faults(faulty, seed=6, **mix)
    assert _statuses(faulty, 60) != first
    assert len(set(first)) >= 3


# ---- book rules ----

def test_faults_restricted_to_books(faulty):
    set_faults(faulty, rate_5xx=1.0, books=["Ruth", "Pesach Haggadah"])
    assert get(faulty, "/api/v3/texts/Ruth 1:2")[0] >= 500
    assert get(faulty, "/api/v2/raw/index/Ruth")[0] >= 500
    assert get(faulty, "/export/schemas/Ruth.json")[0] >= 500
    assert get(faulty, "/api/v3/texts/Pesach Haggadah, Magid, Ha Lachma Anya")[0] >= 500
    assert get(faulty, "/api/v3/texts/Jonah 1")[0] == 200
    assert get(faulty, "/api/v3/texts/Ibn Ezra on Ruth 1")[0] == 200
    assert get(faulty, "/export/schemas/Ibn_Ezra_on_Ruth.json")[0] == 200
    assert get(faulty, "/api/index")[0] == 200


def test_fail_books_always_answer_500(faulty):
    set_faults(faulty, fail_books=["Ruth"])
    for path in (RUTH, "/api/v2/raw/index/Ruth", "/api/shape/Ruth", "/export/schemas/Ruth.json"):
        assert [get(faulty, path)[0] for _ in range(3)] == [500] * 3
    assert get(faulty, "/api/v3/texts/Jonah 1")[0] == 200


# ---- --max-rps ----

def test_max_rps_answers_429_past_the_limit_then_lets_requests_through(faulty):
    limit = 10
    set_faults(faulty, max_rps=limit)
    time.sleep(1.0)  # earlier tests' requests leave the window

    async def burst() -> tuple[list[tuple[int, str | None]], float]:
        async with aiohttp.ClientSession() as session:
            async def one():
                async with session.get(faulty + "/api/v3/texts/Jonah%201") as resp:
                    await resp.read()
                    return resp.status, resp.headers.get("Retry-After")

            started = time.monotonic()
            answers = await asyncio.gather(*(one() for _ in range(3 * limit)))
            return answers, time.monotonic() - started

    answers, elapsed = asyncio.run(burst())
    ok = [a for a in answers if a[0] == 200]
    limited = [a for a in answers if a[0] == 429]
    assert len(ok) + len(limited) == len(answers)
    assert all(retry_after == "1" for _, retry_after in limited)
    if elapsed < 1.0:
        assert len(ok) == limit
    assert len(limited) >= len(answers) - limit * (int(elapsed) + 1)
    time.sleep(1.0)
    assert get(faulty, "/api/v3/texts/Jonah 1")[0] == 200


# ---- the fetch layer through faults ----

FAST = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_max=0.05, jitter=0.5, retry_after_max=0.05)
BOOKS = ["Pesach Haggadah", "Ben Ish Hai", "Derech Hashem", "Ruth"]


def _fetch_all(url: str, retry: RetryPolicy = FAST, **config) -> dict[str, tuple[list, dict]]:
    settings = {"requests_per_second": None, "max_in_flight": 4, "request_timeout": 0.5, "retry": retry} | config
    client_config = ClientConfig(base_url=url, **settings)

    async def main():
        results = await asyncio.gather(*(
            fetch_book(book, source="api", base_url=url, client_config=client_config, options=FetchOptions())
            for book in BOOKS))
        return {book: (r.segments, r.stats) for book, r in zip(BOOKS, results)}

    return asyncio.run(main())


@pytest.fixture(scope="module")
def reference(replica) -> dict[str, list]:
    """The records of a fault-free fetch (the session's replica has no faults)."""
    return {book: segments for book, (segments, _) in _fetch_all(replica).items()}


@pytest.mark.parametrize("faults, kinds", [
    ("5xx=0.1,429=0.05,timeout=0.02,reset=0.02,truncate=0.01,seed=7",
     {"500", "502", "503", "429", "timeout", "reset", "truncate"}),
    ("content_type=0.1,truncate=0.1,reset=0.1,seed=1", {"content_type", "truncate", "reset"}),
])
def test_fetch_survives_the_fault_matrix_with_identical_records(sample_dir, reference, faults, kinds):
    spec = FaultSpec.parse(faults, slow_seconds=2.0)
    with ReplicaThread(sample_dir, faults=spec) as url:
        fetched = _fetch_all(url)
        injected = stats(url)["faults_injected"]
    assert kinds <= set(injected), injected  # the seed makes every kind of the matrix happen
    for book in BOOKS:
        assert fetched[book][0] == reference[book], book
    # A wrong content type on a 404 "no text" answer needs no retry (its body still parses); the rest do.
    retries = sum(s["retries"] for _, s in fetched.values())
    assert retries >= sum(n for kind, n in injected.items() if kind != "content_type") > 0


def test_max_rps_slows_the_client_down_and_it_recovers(sample_dir, reference):
    limit = 40
    with ReplicaThread(sample_dir, faults=FaultSpec(max_rps=limit)) as url:
        started = time.monotonic()
        fetched = _fetch_all(url, RetryPolicy(max_attempts=8, backoff_base=0.05), max_in_flight=8)
        elapsed = time.monotonic() - started
        snapshot = stats(url)
    assert snapshot["faults_injected"]["max_rps"] > 0
    served = sum(n for route in snapshot["requests_by_route"].values() for s, n in route.items() if s == "200")
    assert elapsed >= (served - limit) / limit * 0.9  # the window held: at most `limit` served per second
    for book in BOOKS:
        assert fetched[book][0] == reference[book], book


def test_error_body_is_an_answer_not_a_transient_fault(sample_dir):
    """Sefaria's 200 + {"error"} means bad input (catch_error_as_json); the fetch fails loudly, with the book."""
    with ReplicaThread(sample_dir, faults=FaultSpec(rate_error_body=1.0, books=("Ruth",))) as url:
        with pytest.raises(IngestError) as failure:
            _fetch_all_one(url, "Ruth")
        assert failure.value.book == "Ruth"
        assert stats(url)["faults_injected"] == {"error_body": 1}  # not retried
        assert _fetch_all_one(url, "Jonah")


def _fetch_all_one(url: str, book: str) -> list:
    config = ClientConfig(base_url=url, requests_per_second=None, retry=FAST)
    result = asyncio.run(fetch_book(book, source="api", base_url=url, client_config=config, options=FetchOptions()))
    return result.segments


def test_fail_book_fails_only_that_book(sample_dir, reference):
    with ReplicaThread(sample_dir, faults=FaultSpec(fail_books=("Ruth",))) as url:
        with pytest.raises(IngestError) as failure:
            _fetch_all_one(url, "Ruth")
        assert failure.value.book == "Ruth" and "500" in str(failure.value)
        assert _fetch_all_one(url, "Pesach Haggadah") == reference["Pesach Haggadah"]


# ---- the replica's life with faults ----

def test_stalled_requests_do_not_hold_up_shutdown(sample_dir):
    thread = ReplicaThread(sample_dir, faults=FaultSpec(rate_timeout=1.0, slow_seconds=60))
    url = thread.start()
    outcome: list[BaseException | int] = []

    def client():
        try:
            outcome.append(get(url, RUTH, timeout=30)[0])
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=client)
    waiter.start()
    time.sleep(0.3)  # the request is in its stall
    started = time.monotonic()
    thread.stop()
    waiter.join(10)
    assert time.monotonic() - started < 5 and outcome


def test_cli_options(sample_dir):
    cmd = [sys.executable, "-m", "sefaria_ingest.replica", "--data", str(sample_dir), "--faults", "5xx=1,seed=3",
           "--fault-books", "Ruth, Jonah", "--fail-book", "Esther", "--max-rps", "50"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line).group(1)
        spec = json.loads(get(url, "/_replica/faults")[2])["spec"]
        assert (spec["rate_5xx"], spec["seed"], spec["max_rps"]) == (1.0, 3, 50)
        assert (spec["books"], spec["fail_books"]) == (["Ruth", "Jonah"], ["Esther"])
        assert get(url, "/api/v3/texts/Jonah 1")[0] in (500, 502, 503)
        assert get(url, "/api/v3/texts/Genesis 1")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
    bad = subprocess.run([*cmd[:5], "--faults", "429=0.6,5xx=0.6"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "add up to" in bad.stderr


# ---- the compact form ----

def test_parse_compact_form():
    spec = FaultSpec.parse("429=0.05, 5xx=0.1,timeout=0.02,reset=0.02,truncate=0.01,error=0.01,content_type=0.02,"
                           "seed=7,retry_after=2,slow=3,max_rps=9", books=("Ruth",))
    assert (spec.rate_429, spec.rate_5xx, spec.rate_timeout, spec.rate_reset, spec.rate_truncate) == (
        0.05, 0.1, 0.02, 0.02, 0.01)
    assert (spec.rate_error_body, spec.rate_content_type, spec.seed, spec.retry_after, spec.slow_seconds,
            spec.max_rps, spec.books) == (0.01, 0.02, 7, 2.0, 3.0, 9, ("Ruth",))
    assert FaultSpec.parse("") == FaultSpec() and not FaultSpec().active
    assert FaultSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("text, message", [
    ("429=1.5", "probability"), ("5xx=0.6,429=0.6", "add up to"), ("boom=0.1", "cannot read"),
    ("429", "cannot read"), ("seed=x", "needs a number"), ("max_rps=0", "max_rps"), ("slow=-1", ">= 0"),
])
def test_parse_errors_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        FaultSpec.parse(text)

