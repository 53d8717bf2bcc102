"""Search over a small real index (Ruth, Jonah, Esther from the sample): modes, fusion, filters, known items."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest

from sefaria_ingest.embed import EmbeddingCache, Embedder, embed_chunks, write_book_vectors
from sefaria_ingest.index import fulltext_dir, vector_dir
from sefaria_ingest.index.fulltext import Hit, open_backend
from sefaria_ingest.index.vector import build_vector_index
from sefaria_ingest.normalize import search_form
from sefaria_ingest.records import Chunk, write_jsonl
from sefaria_ingest.search import RRF_K, format_results, reciprocal_rank_fusion, search

BOOKS = {"Ruth": "Writings", "Jonah": "Prophets", "Esther": "Writings"}


def load_book(sample_dir: Path, book: str, lang: str) -> list[Chunk]:
    """One chunk per verse, built by hand from the export's merged.json."""
    language = "English" if lang == "en" else "Hebrew"
    path = sample_dir / "json" / "Tanach" / BOOKS[book] / book / language / "merged.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    chunks = []
    for c, chapter in enumerate(data["text"], 1):
        for v, text in enumerate(chapter, 1):
            if not text.strip():
                continue
            ref = f"{book} {c}:{v}"
            chunks.append(
                Chunk(
                    id=f"{book}|{lang}|{c}:{v}",
                    ref=ref,
                    he_ref=f"{data['heTitle']} {c}:{v}",
                    refs=[ref],
                    book=book,
                    categories=data["categories"],
                    lang=lang,
                    version_title=data["versionTitle"],
                    license="CC-BY",
                    text=text,
                    search_text=search_form(text),
                    original=text,
                )
            )
    return chunks


@pytest.fixture(scope="module")
def embedder():
    return Embedder(threads=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sample_dir, embedder):
    """A results tree with both indexes: English and Hebrew in full-text, English in the vector index."""
    results = tmp_path_factory.mktemp("results")
    chunks = {book: load_book(sample_dir, book, "en") + load_book(sample_dir, book, "he") for book in BOOKS}
    with open_backend({"backend": "tantivy", "path": str(fulltext_dir(results))}) as backend:
        for book, book_chunks in chunks.items():
            backend.upsert_book(book, book_chunks)
    files = []
    with EmbeddingCache(results / "cache", embedder.model_name) as cache:
        for book, book_chunks in chunks.items():
            ids, vectors, _ = embed_chunks(book_chunks, embedder, cache, languages=["en"])
            paths = (
                results / "vectors" / f"{book}.npy",
                results / "vectors" / f"{book}.ids.json",
                results / "chunks" / f"{book}.jsonl",
            )
            write_book_vectors(paths[0], paths[1], ids, vectors)
            write_jsonl(paths[2], book_chunks)
            files.append(paths)
    build_vector_index(files, vector_dir(results), model_name=embedder.model_name)
    return results, chunks


def hit(chunk_id: str) -> Hit:
    return Hit(id=chunk_id, ref=chunk_id, he_ref="", book="B", lang="en", score=0.0, snippet=chunk_id)


def test_rrf_sums_reciprocal_ranks():
    fused = reciprocal_rank_fusion([[hit("A"), hit("B"), hit("C")], [hit("C"), hit("D"), hit("A")]], rrf_k=60)
    # A and C: 1/61 + 1/63 each (tie, both best at rank 1, so by id); B and D: 1/62 each.
    assert [h.id for h in fused] == ["A", "C", "B", "D"]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 63)
    assert fused[2].score == pytest.approx(1 / 62)
    only_one = reciprocal_rank_fusion([[hit("X")], []])
    assert [(h.id, h.score) for h in only_one] == [("X", pytest.approx(1 / 11))]


def test_each_sides_first_hit_survives_fusion_with_fifty_shared_runners_up():
    # The known-item failure of rank constant 60: each side ranks its own chunk first, and the same 50 other
    # chunks fill ranks 2-51 of both lists, in opposite orders. With the default both first hits stay in the top 10.
    shared = [hit(f"s{i:02d}") for i in range(50)]
    lexical, semantic = [hit("LEX"), *shared], [hit("SEM"), *reversed(shared)]
    top = [h.id for h in reciprocal_rank_fusion([lexical, semantic])[:10]]
    assert "LEX" in top and "SEM" in top, top
    top_60 = [h.id for h in reciprocal_rank_fusion([lexical, semantic], rrf_k=60)[:10]]
    assert "LEX" not in top_60 and "SEM" not in top_60  # what the default avoids


def test_hybrid_fuses_bm25_and_vector_rankings(corpus, embedder):
    results, _ = corpus
    query = "the king made a feast for all his princes"
    lexical = search(results, query, k=50, mode="bm25")
    semantic = search(results, query, k=50, mode="vector", embedder=embedder)
    fused = search(results, query, k=10, mode="hybrid", embedder=embedder)
    expected: dict[str, float] = {}
    for ranking in (lexical, semantic):
        for rank, h in enumerate(ranking, 1):
            expected[h.id] = expected.get(h.id, 0.0) + 1 / (RRF_K + rank)
    assert len(fused) == 10
    for h in fused:
        assert h.score == pytest.approx(expected[h.id])
    assert [h.score for h in fused] == pytest.approx(sorted(expected.values(), reverse=True)[:10])
    # Both sides contributed: the fused list is neither ranking's own top 10.
    fused_ids = {h.id for h in fused}
    assert fused_ids & {h.id for h in lexical[:10]} and fused_ids & {h.id for h in semantic[:10]}


def test_known_items_bm25_and_hybrid(corpus, embedder):
    results, chunks = corpus
    english = [c for book in chunks.values() for c in book if c.lang == "en"]
    picked = random.Random(20240611).sample(english, 30)
    found = {"bm25": 0, "hybrid": 0}
    for chunk in picked:
        for mode in found:
            ids = [h.id for h in search(results, chunk.text, k=10, mode=mode, embedder=embedder)]
            found[mode] += chunk.id in ids
    assert found["bm25"] / len(picked) >= 0.99, found
    assert found["hybrid"] / len(picked) >= 0.95, found


def test_vector_mode_finds_a_verse_by_its_own_text(corpus, embedder):
    results, chunks = corpus
    verse = chunks["Jonah"][10]
    hits = search(results, verse.text, k=3, mode="vector", embedder=embedder)
    assert hits[0].id == verse.id and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].ref == verse.ref and hits[0].he_ref == verse.he_ref


def test_hebrew_query_with_and_without_niqqud(corpus):
    results, chunks = corpus
    first = next(c for c in chunks["Ruth"] if c.lang == "he")
    for query in (first.text, first.search_text, "ויהי בימי שפט השפטים"):
        assert search(results, query, k=3, mode="bm25")[0].id == first.id


@pytest.mark.parametrize("mode", ["bm25", "vector", "hybrid"])
def test_filters_in_every_mode(corpus, embedder, mode):
    results, _ = corpus
    by_book = search(results, "and the king said", k=20, mode=mode, book="Esther", embedder=embedder)
    assert by_book and {h.book for h in by_book} == {"Esther"}
    hebrew = search(results, "המלך", k=20, mode=mode, lang="he", embedder=embedder)
    assert {h.lang for h in hebrew} <= {"he"}
    if mode != "vector":  # the vector index holds English only
        assert hebrew
    assert search(results, "and the king said", k=5, mode=mode, book="Genesis", embedder=embedder) == []


def test_format_results(corpus, embedder):
    results, _ = corpus
    hits = search(results, "Jonah was in the belly of the fish", k=3, mode="hybrid", embedder=embedder)
    records = orjson.loads(format_results(hits, as_json=True))
    assert [r["ref"] for r in records] == [h.ref for h in hits]
    assert set(records[0]) == {"id", "ref", "he_ref", "book", "lang", "score", "snippet"}
    text = format_results(hits)
    assert text.splitlines()[0].startswith(" 1. " + hits[0].ref)
    assert len(text.splitlines()) == 2 * len(hits)
    assert format_results([]) == "no results"


def test_bad_requests(corpus, embedder):
    results, _ = corpus
    with pytest.raises(ValueError, match="mode"):
        search(results, "Jonah", mode="semantic")
    with pytest.raises(ValueError, match="built with"):
        search(results, "Jonah", mode="vector", embedder=Embedder("someone/another-model"))
    assert search(results, "   ", mode="hybrid", embedder=embedder) == []
    assert search(results, "(((", mode="bm25") == []
    with pytest.raises(FileNotFoundError):
        search(results / "nowhere", "Jonah", mode="bm25")
