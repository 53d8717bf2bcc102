"""Search the built indexes: BM25 (full-text), vector (embedding) or hybrid (reciprocal rank fusion of both)."""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import orjson

from .embed import Embedder
from .index import fulltext_dir, vector_dir
from .index.fulltext import Hit, open_backend
from .index.vector import VectorIndex
from .tokens import resolve_model_path

MODES = ("bm25", "vector", "hybrid")
# The fusion's rank constant. The usual 60 (from fusing many TREC runs) lets any chunk found by both sides, however
# far down, outscore one that a single side ranks first: 2 / (60 + 50) > 1 / (60 + 1). Over the whole sample that
# dropped bm25's first hit out of the hybrid top 10 for 7 of 100 known-item queries (and the vector side's for 3).
# At 10, the first hit of either side stays in the top 10 unless ten chunks are ranked within ~11 by both.
RRF_K = 10
# Each ranking handed to the fusion is this deep (or k, if larger): a chunk ranked well by one side only
# still gets its share.
FUSION_DEPTH = 50


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], rrf_k: int = RRF_K) -> list[Hit]:
    """One ranking from several: score = sum of 1 / (rrf_k + rank) over the rankings a chunk appears in.

    Ties go to the better single rank, then the id; the first ranking's record (and snippet) of a chunk is kept.
    """
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    records: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, 1):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (rrf_k + rank)
            best_rank[hit.id] = min(best_rank.get(hit.id, rank), rank)
            records.setdefault(hit.id, hit)
    order = sorted(scores, key=lambda i: (-scores[i], best_rank[i], i))
    return [dataclasses.replace(records[i], score=scores[i]) for i in order]


def _bm25(
    results_dir, query: str, k: int, lang: str | None, book: str | None, fulltext_config: dict | None
) -> list[Hit]:
    config = dict(fulltext_config or {"backend": "tantivy"})
    if config.get("backend", "tantivy") == "tantivy":
        config.setdefault("path", str(fulltext_dir(results_dir)))
        config.setdefault("create", False)
    backend = open_backend(config)
    try:
        return backend.search(query, k, lang=lang, book=book)
    finally:
        backend.close()


def _vector(
    results_dir, query: str, k: int, lang: str | None, book: str | None, embedder: Embedder | None
) -> list[Hit]:
    with VectorIndex.open(vector_dir(results_dir)) as index:
        if index.count == 0:
            return []
        if embedder is None:
            embedder = Embedder(index.model_name)
        elif resolve_model_path(embedder.model_name) != resolve_model_path(index.model_name):
            raise ValueError(
                f"the vector index was built with {index.model_name!r}; the query embedder is {embedder.model_name!r}"
            )
        vec = embedder.encode([query])[0]
        return index.search(vec, k, filter_book=book, filter_lang=lang)


def search(
    results_dir: str | os.PathLike,
    query: str,
    k: int = 10,
    mode: str = "bm25",
    lang: str | None = None,
    book: str | None = None,
    fulltext_config: dict | None = None,
    embedder: Embedder | None = None,
) -> list[Hit]:
    """The `k` best chunks for `query` in the indexes under `results_dir`, best first.

    Scores are BM25 (bm25), cosine similarity (vector) or the fused reciprocal-rank score (hybrid).
    """
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")
    if k <= 0 or not query.strip():
        return []
    if mode == "bm25":
        return _bm25(results_dir, query, k, lang, book, fulltext_config)
    if mode == "vector":
        return _vector(results_dir, query, k, lang, book, embedder)
    depth = max(k, FUSION_DEPTH)
    lexical = _bm25(results_dir, query, depth, lang, book, fulltext_config)
    semantic = _vector(results_dir, query, depth, lang, book, embedder)
    return reciprocal_rank_fusion([lexical, semantic])[:k]


def format_results(results: Sequence[Hit], as_json: bool = False) -> str:
    """Results for the command line: a JSON array of records, or numbered lines with a snippet under each."""
    if as_json:
        return orjson.dumps([dataclasses.asdict(h) for h in results], option=orjson.OPT_INDENT_2).decode()
    if not results:
        return "no results"
    lines = []
    for n, hit in enumerate(results, 1):
        lines.append(f"{n:>2}. {hit.ref}  [{hit.book} · {hit.lang}]  score {hit.score:.4g}")
        lines.append(f"    {' '.join(hit.snippet.split())}")
    return "\n".join(lines)
