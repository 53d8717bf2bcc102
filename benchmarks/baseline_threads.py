"""Baseline (a): the naive design the old system started from — 500 threads, one book each, walking `next`.

Kept faithful to that design, flaws included:
- `ThreadPoolExecutor(max_workers=500)` with one task per book: a book is one thread, so at most as many
  requests are in flight as there are books, whatever the pool size.
- Blocking `requests` calls through one shared `requests.Session` with its default adapter: a pool of 10
  kept-alive connections (`pool_maxsize=10`, non-blocking), so beyond 10 concurrent threads connections
  are opened and thrown away again.
- A book starts at `<Book> 1:1` (Talmud: `<Book> 2a`) and follows `next` one section at a time until it is
  null. A complex book has no `<Book> 1:1`: its first request fails and the whole book is lost, as it was.
  Talmud commentaries (`Rashi on Megillah 1:1`) and books whose text starts later are lost the same way.
- No rate limit and no retries: an error ends the book; what it got until then still counts.

One adaptation to the replica: the old code read the v1 texts API, whose default `context=1` answers
`Genesis 1:1` with all of chapter 1. The replica serves v3 (`version=hebrew&version=english`), which answers
a segment ref with that one segment, so when the start answer is a single segment the walk continues from
its `sectionRef`: one extra request per book, and the first section is not lost to the API difference.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence
from urllib.parse import quote

import requests

from benchcount import OLD_VERSION_PARAMS, BookOutcome, BookSpec, is_segment_answer, segment_keys, start_ref

MAX_WORKERS = 500
REQUEST_TIMEOUT = 60.0


def run_threads(base_url: str, books: Sequence[BookSpec], *, max_workers: int = MAX_WORKERS,
                time_cap: float | None = None) -> list[BookOutcome]:
    """Walk every book on its own thread; a book still walking after `time_cap` seconds stops where it is."""
    deadline = None if time_cap is None else time.monotonic() + time_cap
    session = requests.Session()
    # 500 threads over a 10-connection pool log "Connection pool is full" for nearly every request.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    try:
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            futures = [pool.submit(walk_book, session, base_url, book, deadline) for book in books]
            return [f.result() for f in futures]
    finally:
        session.close()


def walk_book(session: requests.Session, base_url: str, book: BookSpec, deadline: float | None) -> BookOutcome:
    """One book, one section per blocking request, following `next`."""
    outcome = BookOutcome(book.title)
    started = time.monotonic()
    ref: str | None = start_ref(book)
    while ref is not None:
        if deadline is not None and time.monotonic() >= deadline:
            outcome.error = f"time cap reached before {ref}"
            break
        outcome.requests += 1
        try:
            resp = session.get(f"{base_url}/api/v3/texts/{quote(ref)}", params=OLD_VERSION_PARAMS,
                               timeout=REQUEST_TIMEOUT)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            outcome.error = f"{ref}: {type(exc).__name__}: {exc}"
            break
        if resp.status_code != 200 or not isinstance(body, dict) or "error" in body:
            cause = body.get("error") if isinstance(body, dict) else resp.text[:200]
            outcome.error = f"{ref}: HTTP {resp.status_code}: {cause}"
            break
        if is_segment_answer(body) and body.get("sectionRef") != body.get("ref"):
            ref = body["sectionRef"]
            continue
        outcome.keys.extend(segment_keys(body))
        ref = body.get("next")
    outcome.seconds = time.monotonic() - started
    return outcome

