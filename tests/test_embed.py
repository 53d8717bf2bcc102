"""Embedding: the real offline model, length-bucketed batches, the shared cache and the language filter."""

from __future__ import annotations

import multiprocessing
import sqlite3

import numpy as np
import pytest

from sefaria_ingest.embed import (
    EmbeddingCache,
    Embedder,
    embed_chunks,
    model_slug,
    read_book_vectors,
    write_book_vectors,
)
from sefaria_ingest.records import Chunk

TEXTS = [
    "And it came to pass in the days when the judges judged, that there was a famine in the land.",
    "Now the word of the LORD came unto Jonah the son of Amittai, saying:",
    "Whither thou goest, I will go.",
    "Vanity of vanities, all is vanity.",
    "In the beginning God created the heaven and the earth, and the earth was without form and void, and "
    "darkness was upon the face of the deep; and the spirit of God moved upon the face of the waters.",
    "Shalom.",
    "And Jonah was in the belly of the fish three days and three nights.",
]


class CountingModel:
    """Wraps the real model and counts the texts it is asked to embed."""

    def __init__(self, model):
        self.model = model
        self.texts = 0
        self.calls = 0

    def encode(self, texts, **kwargs):
        self.calls += 1
        self.texts += len(texts)
        return self.model.encode(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.fixture(scope="module")
def embedder():
    return Embedder(batch_size=3, threads=2)


@pytest.fixture
def counting(embedder):
    real = embedder.model
    wrapper = CountingModel(real)
    embedder._model = wrapper
    yield wrapper
    embedder._model = real


def chunk(i: int, text: str, lang: str = "en", book: str = "Test") -> Chunk:
    return Chunk(
        id=f"{book}.{lang}.{i}",
        ref=f"{book} {i}",
        he_ref="",
        refs=[f"{book} {i}"],
        book=book,
        categories=["Test"],
        lang=lang,
        version_title="v",
        license="CC0",
        text=text,
        search_text=text.casefold(),
        original=text,
    )


def test_vectors_are_unit_float32(embedder):
    vectors = embedder.encode(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_order_restored_across_length_batches(embedder):
    # batch_size=3 with texts of very different lengths: batches are regrouped by length, rows must not be.
    together = embedder.encode(TEXTS)
    alone = np.stack([embedder.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    reversed_rows = embedder.encode(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(together, reversed_rows, atol=1e-5)
    # Different texts really get different vectors (so the comparisons above can fail).
    assert float(together[0] @ together[3]) < 0.9


def test_same_text_same_vector(embedder):
    a, b = embedder.encode([TEXTS[2], TEXTS[2]])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_cache_hit_avoids_recompute(tmp_path, embedder, counting):
    chunks = [chunk(i, t) for i, t in enumerate(TEXTS)]
    with EmbeddingCache(tmp_path, embedder.model_name) as cache:
        ids1, vecs1, stats1 = embed_chunks(chunks, embedder, cache, languages=["en"])
        assert (stats1.computed, stats1.cached) == (len(TEXTS), 0)
        assert counting.texts == len(TEXTS)
        ids2, vecs2, stats2 = embed_chunks(chunks, embedder, cache, languages=["en"])
    assert (stats2.computed, stats2.cached) == (0, len(TEXTS))
    assert counting.texts == len(TEXTS)  # nothing reached the model the second time
    assert ids1 == ids2 == [c.id for c in chunks]
    np.testing.assert_array_equal(vecs1, vecs2)
    np.testing.assert_allclose(vecs1, embedder.encode(TEXTS), atol=1e-5)

    # A fresh cache object on the same file (another job) sees the same vectors; one new text is computed.
    more = chunks + [chunk(99, "A text the cache has never seen.")]
    with EmbeddingCache(tmp_path, embedder.model_name) as cache:
        before = counting.texts
        ids3, vecs3, stats3 = embed_chunks(more, embedder, cache, languages=["en"])
    assert (stats3.computed, stats3.cached) == (1, len(TEXTS))
    assert counting.texts == before + 1
    np.testing.assert_array_equal(vecs3[:-1], vecs1)


def test_repeated_text_embedded_once(embedder, counting):
    chunks = [chunk(1, TEXTS[0]), chunk(2, TEXTS[1]), chunk(3, TEXTS[0])]
    ids, vecs, stats = embed_chunks(chunks, embedder, None, languages=["en"])
    assert counting.texts == 2 and stats.computed == 2
    np.testing.assert_array_equal(vecs[0], vecs[2])
    assert ids == ["Test.en.1", "Test.en.2", "Test.en.3"]


def test_languages_filter(embedder, counting):
    chunks = [chunk(1, TEXTS[0], "en"), chunk(2, "וַיְהִי בִּימֵי שְׁפֹט הַשֹּׁפְטִים", "he"), chunk(3, TEXTS[1], "en")]
    ids, vecs, stats = embed_chunks(chunks, embedder, None, languages=["en"])
    assert ids == ["Test.en.1", "Test.en.3"] and vecs.shape[0] == 2
    assert (stats.selected, stats.skipped) == (2, 1)
    ids, vecs, stats = embed_chunks(chunks, embedder, None, languages=["en", "he"])
    assert ids == ["Test.en.1", "Test.he.2", "Test.en.3"] and vecs.shape[0] == 3


def test_nothing_to_embed_does_not_load_model():
    lazy = Embedder()
    ids, vecs, stats = embed_chunks([chunk(1, "שלום", "he")], lazy, None, languages=["en"])
    assert ids == [] and vecs.shape[0] == 0 and stats.skipped == 1
    assert lazy._model is None


def test_book_vectors_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((5, 8)).astype(np.float32)
    ids = [f"c{i}" for i in range(5)]
    write_book_vectors(tmp_path / "b.npy", tmp_path / "b.ids.json", ids, vecs)
    ids2, vecs2 = read_book_vectors(tmp_path / "b.npy", tmp_path / "b.ids.json")
    assert ids2 == ids
    np.testing.assert_array_equal(vecs2, vecs)
    with pytest.raises(ValueError):
        write_book_vectors(tmp_path / "x.npy", tmp_path / "x.ids.json", ids[:4], vecs)
    assert not (tmp_path / "x.npy").exists()
    write_book_vectors(tmp_path / "y.npy", tmp_path / "y.ids.json", ids[:4], vecs[:4])
    (tmp_path / "y.ids.json").write_text('["c0"]')
    with pytest.raises(ValueError):
        read_book_vectors(tmp_path / "y.npy", tmp_path / "y.ids.json")


def _writer(path: str, start: int, n: int) -> None:
    rng = np.random.default_rng(start)
    with EmbeddingCache(path, "some/model") as cache:
        for i in range(start, start + n, 50):
            texts = [f"text {j}" for j in range(i, i + 50)]
            cache.put_many(texts, rng.standard_normal((50, 4)).astype(np.float32))


def test_cache_is_safe_for_parallel_jobs(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    jobs = [ctx.Process(target=_writer, args=(str(tmp_path), k * 1000, 500)) for k in range(3)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(60)
    assert [job.exitcode for job in jobs] == [0, 0, 0]
    with EmbeddingCache(tmp_path, "some/model") as cache:
        assert len(cache) == 1500
        got = cache.get_many([f"text {j}" for j in (0, 1499, 2250)])
    assert set(got) == {"text 0", "text 1499", "text 2250"} and all(v.shape == (4,) for v in got.values())
    assert (tmp_path / f"embeddings-{model_slug('some/model')}.sqlite").is_file()
    mode = sqlite3.connect(tmp_path / "embeddings-some--model.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
