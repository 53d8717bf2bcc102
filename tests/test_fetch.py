"""Fetching books: both sources, every non-empty segment exactly once with the right ref, retries, errors."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
from collections import Counter

import orjson
import pytest
from aiohttp import web

from sefaria_ingest.client import ClientConfig
from sefaria_ingest.errors import BadSchema, FetchFailed, MalformedResponse, UnknownBook
from sefaria_ingest.export_tree import ExportTree
from sefaria_ingest.fetch import fetch_book
from sefaria_ingest.replica import ReplicaThread
from sefaria_ingest.retry import RetryPolicy
from sefaria_ingest.schema import parse_index
from sefaria_ingest.sources import FetchOptions

FAST = ClientConfig(requests_per_second=500, burst=50, max_in_flight=16,
                    retry=RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05))


def fetch(title, source, base, options=FetchOptions(), config=FAST):
    return asyncio.run(fetch_book(title, source=source, base_url=base, client_config=config, options=options))


def count_py(sample_dir) -> dict[tuple[str, str], int]:
    """Non-empty segments per (title, language) exactly as the sample's own count.py counts them."""
    namespace: dict = {}
    exec(compile((sample_dir / "count.py").read_text(), "count.py", "exec"), namespace)
    counts = {}
    for _book_dir, langs in namespace["scan"](str(sample_dir)).items():
        for lang_dir, st in langs.items():
            counts[(st["title"], {"English": "en", "Hebrew": "he"}[lang_dir])] = st["nonempty"]
    return counts


@pytest.fixture(scope="module")
def all_books(sample_dir, replica):
    """Every sample book fetched through the api source, the export over HTTP and the export directory."""
    results = {}
    for title in ExportTree(sample_dir).titles():
        results[title] = (fetch(title, "api", replica), fetch(title, "export", replica + "/export"),
                          fetch(title, "export", str(sample_dir)))
    return results


def test_every_sample_book_is_complete_and_identical_through_both_sources(all_books, sample_dir):
    expected = count_py(sample_dir)
    assert len(all_books) == 40
    total = 0
    for title, (api, export_http, export_dir) in all_books.items():
        assert api.segments == export_http.segments == export_dir.segments, title
        per_lang = Counter(s.lang for s in api.segments)
        for lang in ("he", "en"):
            assert per_lang.get(lang, 0) == expected.get((title, lang), 0), (title, lang)
        refs = Counter((s.lang, s.version_title, s.ref) for s in api.segments)
        assert max(refs.values()) == 1, f"{title}: a segment arrived twice"
        total += len(api.segments)
    assert total == sum(expected.values()) == 57230


def test_refs_resolve_back_to_the_same_text(all_books, replica_get):
    rng = random.Random(5)
    for title, (api, _, _) in all_books.items():
        for seg in rng.sample(api.segments, min(3, len(api.segments))):
            family = {"he": "hebrew", "en": "english"}[seg.lang]
            reply = replica_get(f"/api/v3/texts/{seg.ref}", [("version", f"{family}|{seg.version_title}")])
            assert reply.status == 200, (seg.ref, reply.body[:200])
            body = reply.json()
            assert body["ref"] == seg.ref and body["heRef"] == seg.he_ref
            assert body["versions"][0]["text"] == seg.text


def test_talmud_and_complex_books_have_sefaria_refs(all_books):
    berakhot = all_books["Berakhot"][0].segments
    assert berakhot[0].ref == "Berakhot 2a:1" and berakhot[0].he_ref == "ברכות ב׳ א:א׳"
    assert all(re.fullmatch(r"Berakhot \d+[ab]:\d+", s.ref) for s in berakhot)
    assert berakhot[-1].ref == "Berakhot 64a:33"
    haggadah = {s.ref for s in all_books["Pesach Haggadah"][0].segments}
    assert "Pesach Haggadah, Magid, Ha Lachma Anya 1" in haggadah
    assert "Rashi on Genesis 1:1:1" in {s.ref for s in all_books["Rashi on Genesis"][0].segments}
    assert all_books["Rashi on Genesis"][0].segments[0].categories[:2] == ["Tanakh", "Rishonim on Tanakh"]


def test_api_source_makes_one_request_per_leaf_and_per_section_when_asked(sample_dir, replica):
    whole = fetch("Pesach Haggadah", "api", replica)
    leaves = parse_index(ExportTree(sample_dir).index("Pesach Haggadah"), book="Pesach Haggadah").leaves()
    assert whole.stats["requests"] == len(leaves) + 1  # one index request, then one per leaf for both languages
    by_section = fetch("Genesis", "api", replica, FetchOptions(max_segments_per_request=100))
    assert by_section.segments == fetch("Genesis", "api", replica).segments
    assert by_section.stats["requests"] == 1 + 50  # index + one request per chapter


def _flaky_middleware(fail_first: int, status: int, retry_after: str | None = None):
    seen = Counter()

    @web.middleware
    async def middleware(request, handler):
        if request.path.startswith("/api/v3/texts/"):
            seen[request.path] += 1
            if seen[request.path] <= fail_first:
                headers = {"Retry-After": retry_after} if retry_after else {}
                return web.json_response({"error": "try later"}, status=status, headers=headers)
        return await handler(request)

    return middleware


@pytest.mark.parametrize("status, retry_after", [(503, None), (500, None), (429, "1")])
def test_retries_recover_every_segment(sample_dir, replica, status, retry_after):
    clean = fetch("Ruth", "api", replica)
    with ReplicaThread(sample_dir, middlewares=[_flaky_middleware(2 if retry_after is None else 1, status,
                                                                    retry_after)]) as url:
        started = asyncio.run(_timed(fetch_book("Ruth", source="api", base_url=url, client_config=FAST,
                                                options=FetchOptions())))
    result, seconds = started
    assert result.segments == clean.segments
    assert result.stats["retries"] >= 1
    assert result.stats["errors_by_status"].get(str(status), 0) >= 1
    if retry_after:
        assert seconds >= 0.95  # the client waited as the server asked


async def _timed(coro):
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await coro
    return result, loop.time() - start


def test_persistent_failure_names_the_book_and_ref(sample_dir):
    with ReplicaThread(sample_dir, middlewares=[_flaky_middleware(100, 503)]) as url:
        with pytest.raises(FetchFailed) as info:
            fetch("Jonah", "api", url)
    assert str(info.value).startswith("Jonah (Jonah")
    assert "503" in str(info.value)


def test_unknown_book_is_a_clear_error(sample_dir, replica):
    for source, base in (("api", replica), ("export", replica + "/export"), ("export", str(sample_dir))):
        with pytest.raises(UnknownBook) as info:
            fetch("Genesys", source, base)
        assert "Genesys" in str(info.value)


def test_malformed_responses_name_the_book(sample_dir):
    @web.middleware
    async def broken(request, handler):
        if request.path.startswith("/api/v2/raw/index/Ruth"):
            return web.json_response({"title": "Ruth", "schema": {"nodeType": "JaggedArrayNode"}})
        if request.path.startswith("/api/v3/texts/Jonah"):
            return web.json_response({"ref": "Jonah", "versions": "none"})
        return await handler(request)

    with ReplicaThread(sample_dir, middlewares=[broken]) as url:
        with pytest.raises(BadSchema, match="^Ruth"):
            fetch("Ruth", "api", url)
        with pytest.raises(MalformedResponse, match="^Jonah"):
            fetch("Jonah", "api", url)


def test_cli_fetch_writes_jsonl_and_prints_one_line(replica, tmp_path):
    out = tmp_path / "Ruth.jsonl"
    run = subprocess.run([sys.executable, "-m", "sefaria_ingest", "fetch", "--source", "api", "--api-url", replica,
                          "--book", "Ruth", "--out", str(out), "--stats", str(tmp_path / "stats.json"), "--rps", "50"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Ruth: 170 segments, 2 requests")
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 170 and records[0]["ref"] == "Ruth 1:1" and records[0]["lang"] == "he"
    assert set(records[0]) == {"ref", "he_ref", "book", "categories", "lang", "version_title", "license", "text"}

    bad = subprocess.run([sys.executable, "-m", "sefaria_ingest", "fetch", "--source", "api", "--api-url", replica,
                          "--book", "Genesys", "--out", str(tmp_path / "x.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "Genesys" in bad.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_failing_whole_node_falls_back_to_sections_counted_by_shape(sample_dir, replica):
    """No `lengths` in the index and the whole-book request keeps failing: /api/shape says how many chapters."""

    @web.middleware
    async def middleware(request, handler):
        if request.path == "/api/v3/texts/Jonah":
            return web.json_response({"error": "upstream timeout"}, status=503)
        response = await handler(request)
        if request.path == "/api/v2/raw/index/Jonah":
            index = orjson.loads(response.body)
            index["schema"].pop("lengths", None)
            return web.json_response(index)
        return response

    with ReplicaThread(sample_dir, middlewares=[middleware]) as url:
        result = fetch("Jonah", "api", url)
    assert result.segments == fetch("Jonah", "api", replica).segments
    # index, 4 failed attempts at the whole book, shape, then one request per chapter
    assert result.stats["requests"] == 1 + FAST.retry.max_attempts + 1 + 4


def test_a_fetch_job_imports_only_what_it_runs():
    """Fetch jobs are mostly process start: scripts/fetch.py's imports must not pull in validation or the other source."""
    probe = (
        "import sys\n"
        "from sefaria_ingest.config import client_config, fetch_base, fetch_options\n"
        "from sefaria_ingest.fetch import fetch_book, summary_line, write_book\n"
        "from sefaria_ingest.global_limit import DEFAULT_STATE_PATH, make_global_limiter\n"
        "from sefaria_ingest.workflow import book_entry, log, run_script\n"
        "print(' '.join(sorted(m for m in ('jsonschema', 'yaml', 'sefaria_ingest.sources.export',\n"
        "                                  'sefaria_ingest.export_tree') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == []
