"""Fetching one book from the configured source into a JSONL file of segments, with its statistics."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Sequence

import orjson

from .atomic import atomic_write_bytes
from .client import ClientConfig, SefariaClient
from .errors import IngestError
from .records import write_jsonl
from .sources import BookFetch, FetchOptions, is_url


async def fetch_book(book: str, *, source: str, base_url: str, client_config: ClientConfig,
                     options: FetchOptions, limiters: Sequence = ()) -> BookFetch:
    """Fetch `book` through `source` ("api" or "export") from `base_url` (an export base may be a directory)."""
    started = time.monotonic()
    # Each job imports only the source it uses: fetch jobs are short, and start-up is much of their cost.
    if source == "api":
        from .sources.api import fetch_book_api as fetch_through_client
    elif source == "export":
        from .sources.export import fetch_book_http as fetch_through_client
        from .sources.export import fetch_book_local
    else:
        raise IngestError(book, f"unknown source {source!r} (expected 'api' or 'export')")
    if source == "export" and not is_url(base_url):
        result = await asyncio.to_thread(fetch_book_local, base_url, book, options)
        result.stats = {"requests": 0, "retries": 0, "bytes": 0}
    else:
        config = dataclasses.replace(client_config, base_url=base_url)
        async with SefariaClient(config, book=book, limiters=list(limiters)) as client:
            result = await fetch_through_client(client, book, options)
            stats = client.stats
            result.stats = {"requests": stats.requests, "retries": stats.retries, "bytes": stats.bytes,
                            "errors_by_status": dict(stats.errors_by_status),
                            "started_at": round(stats.started_at, 3), "requests_per_second": stats.per_second}
    if not result.segments:
        raise IngestError(book, f"the book has no text in {' or '.join(options.languages)} (an empty book)")
    by_lang: dict[str, int] = {}
    for seg in result.segments:
        by_lang[seg.lang] = by_lang.get(seg.lang, 0) + 1
    result.stats.update(book=book, source=source, segments=len(result.segments), segments_by_lang=by_lang,
                        seconds=round(time.monotonic() - started, 3))
    return result


def write_book(result: BookFetch, out: str | Path, stats_out: str | Path | None = None) -> None:
    """Write the segments (JSONL) and the stats (JSON), each atomically; segments first."""
    write_jsonl(out, result.segments)
    if stats_out is not None:
        atomic_write_bytes(stats_out, orjson.dumps(result.stats, option=orjson.OPT_INDENT_2))


def summary_line(stats: dict) -> str:
    """The one-line summary the CLI and the workflow log print."""
    return (f"{stats['book']}: {stats['segments']} segments, {stats.get('requests', 0)} requests, "
            f"{stats.get('retries', 0)} retries, {stats.get('bytes', 0)} bytes, {stats['seconds']:.2f} s")
