"""The hnswlib vector index: recall at the default parameters, build from per-book files, filters, empty input."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest

from sefaria_ingest.embed import write_book_vectors
from sefaria_ingest.errors import IngestError
from sefaria_ingest.index import vector
from sefaria_ingest.index.vector import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EF_SEARCH,
    DEFAULT_M,
    VectorIndex,
    build_vector_index,
    measure_recall,
)
from sefaria_ingest.records import Chunk, write_jsonl

DIM = 32


def unit(rng, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_book(tmp_path, book: str, vectors: np.ndarray, langs: list[str]) -> tuple:
    chunks = [
        Chunk(
            id=f"{book}.{i}",
            ref=f"{book} {i + 1}",
            he_ref=f"ספר {i + 1}",
            refs=[f"{book} {i + 1}"],
            book=book,
            categories=["Tanakh", book],
            lang=lang,
            version_title="v",
            license="CC0",
            text=f"text of {book} {i + 1} " + "x" * 400,
            search_text="",
            original="",
        )
        for i, lang in enumerate(langs)
    ]
    # The chunk file also holds a chunk without a vector (a Hebrew chunk the English model skips).
    extra = Chunk(f"{book}.he-only", f"{book} 0", "", [], book, [], "he", "v", "CC0", "שלום", "שלומ", "שלום")
    write_jsonl(tmp_path / f"{book}.jsonl", [*chunks, extra])
    write_book_vectors(tmp_path / f"{book}.npy", tmp_path / f"{book}.ids.json", [c.id for c in chunks], vectors)
    return (tmp_path / f"{book}.npy", tmp_path / f"{book}.ids.json", tmp_path / f"{book}.jsonl")


def test_recall_at_defaults_on_random_vectors():
    # Random unit vectors in 384 dimensions have no cluster structure: the hardest case for a graph index.
    vectors = unit(np.random.default_rng(7), 8000, 384)
    started = time.perf_counter()
    recall = measure_recall(vectors, DEFAULT_M, DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, k=10, n_queries=200)
    assert recall >= 0.98, f"recall@10 {recall:.4f} in {time.perf_counter() - started:.1f}s"
    # The measurement itself can fail: a starved search finds far fewer true neighbours.
    assert measure_recall(vectors, M=4, ef_construction=10, ef_search=10, k=10, n_queries=200) < 0.9


@pytest.fixture
def books(tmp_path):
    rng = np.random.default_rng(3)
    ruth = unit(rng, 300)
    jonah = unit(rng, 40)
    files = [
        make_book(tmp_path, "Ruth", ruth, ["en"] * 200 + ["he"] * 100),
        make_book(tmp_path, "Jonah", jonah, ["en"] * 40),
    ]
    return files, np.concatenate([ruth, jonah]), [f"Ruth.{i}" for i in range(300)] + [f"Jonah.{i}" for i in range(40)]


def exact_top(all_vectors, ids, q, k, keep=lambda chunk_id: True):
    sims = all_vectors @ q
    order = [i for i in np.argsort(-sims) if keep(ids[i])]
    return [ids[i] for i in order[:k]]


def test_build_and_search(tmp_path, books):
    files, all_vectors, ids = books
    stats = build_vector_index(files, tmp_path / "index", M=16, ef_construction=100, ef_search=100, model_name="m")
    assert (stats.count, stats.dim, stats.books) == (340, DIM, 2)
    written = sorted(p.name for p in (tmp_path / "index").iterdir())
    assert written == ["index.json", "meta.sqlite", "vectors.hnsw", "vectors.npy"]
    info = orjson.loads((tmp_path / "index" / "index.json").read_bytes())
    assert info["model"] == "m" and info["count"] == 340
    with VectorIndex.open(tmp_path / "index") as index:
        hits = index.search(all_vectors[305], k=5)
        assert hits[0].id == "Jonah.5" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert (hits[0].ref, hits[0].book, hits[0].lang, hits[0].he_ref) == ("Jonah 6", "Jonah", "en", "ספר 6")
        assert hits[0].snippet.startswith("text of Jonah 6") and len(hits[0].snippet) == vector.SNIPPET_CHARS
        assert [h.id for h in hits] == exact_top(all_vectors, ids, all_vectors[305], 5)
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_filters_exact_and_graph_paths(tmp_path, books, monkeypatch):
    files, all_vectors, ids = books
    build_vector_index(files, tmp_path / "index", M=16, ef_construction=200, ef_search=400, model_name="m")
    q = unit(np.random.default_rng(11), 1)[0]
    is_he = {f"Ruth.{i}" for i in range(200, 300)}
    with VectorIndex.open(tmp_path / "index") as index:
        for limit in (vector.EXACT_FILTER_LIMIT, 0):  # exact scan of the filtered labels, then the graph filter
            monkeypatch.setattr(vector, "EXACT_FILTER_LIMIT", limit)
            jonah = index.search(q, k=10, filter_book="Jonah")
            assert [h.id for h in jonah] == exact_top(all_vectors, ids, q, 10, lambda i: i.startswith("Jonah."))
            he = index.search(q, k=10, filter_lang="he")
            assert [h.id for h in he] == exact_top(all_vectors, ids, q, 10, lambda i: i in is_he)
            ruth_en = index.search(q, k=400, filter_book="Ruth", filter_lang="en")
            assert len(ruth_en) == 200 and {h.id for h in ruth_en} == {f"Ruth.{i}" for i in range(200)}
            assert index.search(q, k=10, filter_book="Jonah", filter_lang="he") == []
            assert index.search(q, k=10, filter_book="Esther") == []
        with pytest.raises(ValueError):
            index.search(np.ones(DIM + 1, dtype=np.float32), k=3)


def test_empty_input_gives_empty_index(tmp_path):
    files = [make_book(tmp_path, "Tanya", np.zeros((0, 0), dtype=np.float32), [])]
    stats = build_vector_index(files, tmp_path / "index", model_name="m")
    assert stats.count == 0
    assert (tmp_path / "index" / "vectors.hnsw").is_file()
    with VectorIndex.open(tmp_path / "index") as index:
        assert index.search(np.ones(384, dtype=np.float32), k=10) == []
        assert index.search(np.ones(384, dtype=np.float32), k=10, filter_lang="en") == []
    assert build_vector_index([], tmp_path / "index2", model_name="m").count == 0


def test_rebuild_replaces_whole_index(tmp_path, books):
    files, all_vectors, _ = books
    build_vector_index(files, tmp_path / "index", M=16, ef_construction=100, ef_search=100, model_name="m")
    build_vector_index(files[1:], tmp_path / "index", M=16, ef_construction=100, ef_search=100, model_name="m")
    with VectorIndex.open(tmp_path / "index") as index:
        assert index.count == 40
        assert {h.book for h in index.search(all_vectors[0], k=50)} == {"Jonah"}
    # Nothing half-built or old is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_vector_without_chunk_is_an_error(tmp_path, books):
    files, _, _ = books
    npy, ids_json, chunks = files[1]
    ids = orjson.loads(ids_json.read_bytes())
    ids_json.write_bytes(orjson.dumps(ids[:-1] + ["Jonah.missing"]))
    with pytest.raises(IngestError, match="Jonah.missing"):
        build_vector_index(files, tmp_path / "index", model_name="m")
    assert not (tmp_path / "index").exists()
