"""Baseline (b): the old system's "optimized" design — 10 processes x 50 async connections, walk then fetch.

Kept faithful to that design, flaws included:
- `ProcessPoolExecutor(10)`, one book per task: each process runs one book at a time with its own aiohttp
  session, at most 50 requests in flight and 10 requests/second *per process* (so 10 processes may send 100/s).
- Phase 1 walks the book: start at `<Book> 1:1` (Talmud: `<Book> 2a`), follow `next` one request at a
  time to collect every section ref. The walk is serial, so the 50 connections sit idle during it.
- Phase 2 fetches every collected section again, all at once under the same limits, and keeps those texts;
  the texts the walk already downloaded are thrown away.
- A complex book has no `<Book> 1:1` and is lost; a failed request in phase 2 loses that section (no retries).

The same v1 -> v3 adaptation as baseline (a) (see baseline_threads): when the start answer is a single
segment, the walk continues from its `sectionRef`. The rate limiter is this project's TokenBucket, so the
per-process limits are exactly the per-job limits design (c) runs with.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

import aiohttp

from benchcount import OLD_VERSION_PARAMS, BookOutcome, BookSpec, is_segment_answer, segment_keys, start_ref
from sefaria_ingest.ratelimit import TokenBucket

PROCESSES = 10
REQUESTS_PER_SECOND = 10.0
MAX_IN_FLIGHT = 50
REQUEST_TIMEOUT = 60.0


def run_processes(base_url: str, books: Sequence[BookSpec], *, processes: int = PROCESSES,
                  requests_per_second: float = REQUESTS_PER_SECOND, burst: int = 2,
                  max_in_flight: int = MAX_IN_FLIGHT) -> list[BookOutcome]:
    """Every book in a pool of `processes` processes, one book per process at a time."""
    # spawn: fresh interpreters, safe even when the caller runs a replica thread of its own.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [pool.submit(fetch_book_walking, base_url, book, requests_per_second, burst, max_in_flight)
                   for book in books]
        return [f.result() for f in futures]


def fetch_book_walking(base_url: str, book: BookSpec, requests_per_second: float, burst: int,
                       max_in_flight: int) -> BookOutcome:
    """One book in this process: walk `next` for the section refs, then fetch them all concurrently."""
    return asyncio.run(_fetch(base_url, book, requests_per_second, burst, max_in_flight))


class _Getter:
    """The old per-process client: a semaphore for in-flight requests and a token bucket for the rate."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, requests_per_second: float, burst: int,
                 max_in_flight: int, outcome: BookOutcome):
        self._session = session
        self._base = base_url
        self._bucket = TokenBucket(requests_per_second, burst)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._outcome = outcome

    async def get(self, ref: str) -> tuple[int, object]:
        async with self._in_flight:
            await self._bucket.acquire()
            self._outcome.requests += 1
            async with self._session.get(f"{self._base}/api/v3/texts/{ref}", params=OLD_VERSION_PARAMS) as resp:
                return resp.status, await resp.json(content_type=None)


async def _fetch(base_url: str, book: BookSpec, requests_per_second: float, burst: int,
                 max_in_flight: int) -> BookOutcome:
    outcome = BookOutcome(book.title)
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        getter = _Getter(session, base_url, requests_per_second, burst, max_in_flight, outcome)
        sections = await _walk(getter, book, outcome)
        answers = await asyncio.gather(*(getter.get(ref) for ref in sections), return_exceptions=True)
    failed = []
    for ref, answer in zip(sections, answers):
        if isinstance(answer, BaseException):
            failed.append(f"{ref}: {type(answer).__name__}: {answer}")
            continue
        status, body = answer
        if status != 200 or not isinstance(body, dict) or "error" in body:
            failed.append(f"{ref}: HTTP {status}")
            continue
        outcome.keys.extend(segment_keys(body))
    if failed:
        phase2 = f"{len(failed)} sections failed, first: {failed[0]}"
        outcome.error = f"{outcome.error}; {phase2}" if outcome.error else phase2
    outcome.seconds = time.monotonic() - started
    return outcome


async def _walk(getter: _Getter, book: BookSpec, outcome: BookOutcome) -> list[str]:
    """Section refs from the start ref to the last `next`, one request at a time."""
    sections: list[str] = []
    ref: str | None = start_ref(book)
    while ref is not None:
        try:
            status, body = await getter.get(ref)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            outcome.error = f"walk stopped at {ref}: {type(exc).__name__}: {exc}"
            break
        if status != 200 or not isinstance(body, dict) or "error" in body:
            cause = body.get("error") if isinstance(body, dict) else body
            outcome.error = f"walk stopped at {ref}: HTTP {status}: {cause}"
            break
        if is_segment_answer(body) and body.get("sectionRef") != body.get("ref"):
            ref = body["sectionRef"]
            continue
        sections.append(body["ref"])
        ref = body.get("next")
    return sections
