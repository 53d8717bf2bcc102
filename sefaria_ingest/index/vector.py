"""The vector index: one hnswlib (cosine) graph over every book's vectors, with chunk metadata beside it."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import hnswlib
import numpy as np
import orjson

from ..embed import normalise_rows, read_book_vectors
from ..errors import IngestError
from ..records import Chunk, read_jsonl
from ..tokens import DEFAULT_MODEL
from .fulltext import Hit

# Chosen with measure_recall on 30,000 random unit vectors of 384 dimensions, the hardest case for a graph
# index (no clusters): recall@10 0.994 there (M=32 or ef_search=600 fall below 0.99); on the sample's 20,745
# real MiniLM vectors the same parameters give 0.9995.
DEFAULT_M = 48
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 800

INDEX_FILE = "vectors.hnsw"
# The same unit vectors by label, memory-mapped for exact search within filters (hnswlib's get_items is slow).
VECTORS_FILE = "vectors.npy"
META_FILE = "meta.sqlite"
INFO_FILE = "index.json"
SNIPPET_CHARS = 300
# Filters matching at most this many chunks are answered exactly; a graph search that must skip most of its
# neighbours loses recall and time there.
EXACT_FILTER_LIMIT = 20_000
_SQL_BATCH = 900


@dataclass(slots=True)
class VectorIndexStats:
    """What a build produced and how long it took."""

    count: int
    dim: int
    books: int
    M: int
    ef_construction: int
    ef_search: int
    seconds: float


def _load_books(book_files: Sequence[tuple]) -> tuple[list[np.ndarray], list[tuple]]:
    """Per-book vectors and one metadata row per vector (label order), checking ids against the chunk files."""
    arrays: list[np.ndarray] = []
    rows: list[tuple] = []
    seen: set[str] = set()
    for npy, ids_json, chunks_jsonl in book_files:
        ids, vectors = read_book_vectors(npy, ids_json)
        if not ids:
            continue
        wanted = set(ids)
        chunks: dict[str, Chunk] = {c.id: c for c in read_jsonl(chunks_jsonl, Chunk) if c.id in wanted}
        book = next(iter(chunks.values())).book if chunks else Path(chunks_jsonl).name
        for chunk_id in ids:
            chunk = chunks.get(chunk_id)
            if chunk is None:
                raise IngestError(book, f"vector id {chunk_id} is not in {chunks_jsonl}")
            if chunk_id in seen:
                raise IngestError(book, f"chunk id {chunk_id} has vectors in two books", ref=chunk.ref)
            seen.add(chunk_id)
            rows.append(
                (
                    len(rows),
                    chunk.id,
                    chunk.ref,
                    chunk.he_ref,
                    chunk.book,
                    chunk.lang,
                    orjson.dumps(chunk.categories).decode(),
                    chunk.text[:SNIPPET_CHARS],
                )
            )
        arrays.append(vectors)
    dims = {a.shape[1] for a in arrays}
    if len(dims) > 1:
        raise ValueError(f"per-book vectors have different widths {sorted(dims)}: were they made by one model?")
    return arrays, rows


def _write_meta(path: Path, rows: list[tuple]) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute(
            "CREATE TABLE chunks (label INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ref TEXT NOT NULL,"
            " he_ref TEXT NOT NULL, book TEXT NOT NULL, lang TEXT NOT NULL, categories TEXT NOT NULL,"
            " snippet TEXT NOT NULL)"
        )
        db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("CREATE INDEX chunks_book_lang ON chunks (book, lang)")
        db.execute("CREATE INDEX chunks_lang ON chunks (lang)")
        db.commit()
    finally:
        db.close()


def _replace_dir(built: Path, target: Path) -> None:
    """Put `built` where `target` is; an old index is moved aside first and removed only after."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old)


def build_vector_index(
    book_files: Sequence[tuple[str | os.PathLike, str | os.PathLike, str | os.PathLike]],
    out_dir: str | os.PathLike,
    M: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    ef_search: int = DEFAULT_EF_SEARCH,
    model_name: str = DEFAULT_MODEL,
    threads: int | None = None,
) -> VectorIndexStats:
    """Build the index from (vectors.npy, ids.json, chunks.jsonl) per book into `out_dir`, replacing it whole.

    Writes vectors.hnsw, vectors.npy (by label), meta.sqlite (label -> chunk) and index.json (model, dimension,
    parameters).
    """
    started = time.perf_counter()
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays, rows = _load_books(book_files)
    vectors = normalise_rows(np.concatenate(arrays)) if arrays else np.zeros((0, 0), dtype=np.float32)
    count, dim = vectors.shape
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        # An index with no vectors has no width; hnswlib needs one, and nothing is ever looked up in it.
        graph = hnswlib.Index(space="cosine", dim=max(dim, 1))
        graph.init_index(max_elements=count, ef_construction=ef_construction, M=M, random_seed=100)
        if count:
            graph.add_items(vectors, np.arange(count), num_threads=threads or -1)
        graph.set_ef(ef_search)
        graph.save_index(str(tmp / INDEX_FILE))
        np.save(tmp / VECTORS_FILE, vectors, allow_pickle=False)
        _write_meta(tmp / META_FILE, rows)
        info = {
            "format": 1,
            "model": model_name,
            "space": "cosine",
            "dim": dim,
            "count": count,
            "books": len(arrays),
            "M": M,
            "ef_construction": ef_construction,
            "ef_search": ef_search,
        }
        (tmp / INFO_FILE).write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
        for path in tmp.iterdir():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return VectorIndexStats(count, dim, len(arrays), M, ef_construction, ef_search, time.perf_counter() - started)


class VectorIndex:
    """An opened vector index: nearest chunks to a unit vector, optionally within a book or language."""

    def __init__(self, path: Path, info: dict, graph: hnswlib.Index, vectors: np.ndarray, meta: sqlite3.Connection):
        self.path = path
        self.info = info
        self.model_name: str = info["model"]
        self.dim: int = info["dim"]
        self.count: int = info["count"]
        self._graph = graph
        self._vectors = vectors
        self._meta = meta

    @classmethod
    def open(cls, out_dir: str | os.PathLike) -> VectorIndex:
        path = Path(out_dir)
        info_file = path / INFO_FILE
        if not info_file.is_file():
            raise FileNotFoundError(f"no vector index at {path} ({INFO_FILE} missing)")
        info = orjson.loads(info_file.read_bytes())
        graph = hnswlib.Index(space=info["space"], dim=max(info["dim"], 1))
        graph.load_index(str(path / INDEX_FILE), max_elements=info["count"])
        graph.set_ef(info["ef_search"])
        vectors = np.load(path / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        meta = sqlite3.connect(f"file:{path / META_FILE}?mode=ro", uri=True, check_same_thread=False)
        return cls(path, info, graph, vectors, meta)

    def _allowed(self, book: str | None, lang: str | None) -> np.ndarray:
        where, args = [], []
        for column, value in (("book", book), ("lang", lang)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT label FROM chunks WHERE {' AND '.join(where)}"
        return np.fromiter((row[0] for row in self._meta.execute(sql, args)), dtype=np.int64)

    def _exact(self, query: np.ndarray, k: int, labels: np.ndarray) -> list[tuple[int, float]]:
        """Brute force over `labels`, a slice at a time so memory stays bounded."""
        labels = np.sort(labels)  # ascending reads from the memory map
        best_labels, best_sims = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        for start in range(0, len(labels), EXACT_FILTER_LIMIT):
            part = labels[start : start + EXACT_FILTER_LIMIT]
            best_labels = np.concatenate([best_labels, part])
            best_sims = np.concatenate([best_sims, self._vectors[part] @ query])
            keep = np.argsort(-best_sims, kind="stable")[:k]
            best_labels, best_sims = best_labels[keep], best_sims[keep]
        return [(int(l), float(s)) for l, s in zip(best_labels, best_sims)]

    def _nearest(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            return self._exact(query, k, allowed)
        n = self.count if allowed is None else len(allowed)
        flt = None
        if allowed is not None:
            members = np.zeros(self.count, dtype=bool)
            members[allowed] = True
            flt = lambda label: bool(members[label])  # noqa: E731
        self._graph.set_ef(max(self.info["ef_search"], k))
        try:
            labels, distances = self._graph.knn_query(query, k=min(k, n), filter=flt)
        except RuntimeError:
            # The graph found fewer than k reachable matches: answer exactly instead of failing.
            return self._exact(query, k, np.arange(self.count) if allowed is None else allowed)
        return [(int(l), 1.0 - float(d)) for l, d in zip(labels[0], distances[0])]

    def search(
        self, vec: np.ndarray, k: int = 10, filter_book: str | None = None, filter_lang: str | None = None
    ) -> list[Hit]:
        """The `k` chunks nearest to `vec` by cosine similarity (the score), best first."""
        if k <= 0 or self.count == 0:
            return []
        query = np.asarray(vec, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise ValueError(f"query vector has {query.shape[0]} dimensions, the index {self.path} has {self.dim}")
        query = normalise_rows(query[None, :])[0]
        allowed = None
        if filter_book is not None or filter_lang is not None:
            allowed = self._allowed(filter_book, filter_lang)
            if len(allowed) == 0:
                return []
            if len(allowed) == self.count:
                allowed = None
        nearest = self._nearest(query, k, allowed)
        return self._hits(nearest)

    def _hits(self, nearest: list[tuple[int, float]]) -> list[Hit]:
        labels = [label for label, _ in nearest]
        rows = {}
        for start in range(0, len(labels), _SQL_BATCH):
            part = labels[start : start + _SQL_BATCH]
            marks = ",".join("?" * len(part))
            sql = f"SELECT label, id, ref, he_ref, book, lang, snippet FROM chunks WHERE label IN ({marks})"
            rows.update({row[0]: row[1:] for row in self._meta.execute(sql, part)})
        hits = []
        for label, score in nearest:
            chunk_id, ref, he_ref, book, lang, snippet = rows[label]
            hits.append(Hit(id=chunk_id, ref=ref, he_ref=he_ref, book=book, lang=lang, score=score, snippet=snippet))
        return hits

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._meta.close()

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def measure_recall(
    vectors: np.ndarray,
    M: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    ef_search: int = DEFAULT_EF_SEARCH,
    k: int = 10,
    n_queries: int = 200,
    seed: int = 0,
    threads: int | None = None,
) -> float:
    """Recall@k of an index with these parameters against brute force, for held-out queries from `vectors`."""
    vectors = normalise_rows(vectors)
    if len(vectors) <= n_queries + k:
        raise ValueError(f"need more than {n_queries + k} vectors, got {len(vectors)}")
    order = np.random.default_rng(seed).permutation(len(vectors))
    queries, base = vectors[order[:n_queries]], vectors[order[n_queries:]]
    graph = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    graph.init_index(max_elements=len(base), ef_construction=ef_construction, M=M, random_seed=100)
    graph.add_items(base, np.arange(len(base)), num_threads=threads or -1)
    graph.set_ef(ef_search)
    found, _ = graph.knn_query(queries, k=k, num_threads=threads or -1)
    sims = queries @ base.T
    kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
    # A found neighbour counts if it is as close as the k-th true one: equal vectors (repeated texts) tie.
    found_sims = np.take_along_axis(sims, found.astype(np.int64), axis=1)
    return float(np.mean(found_sims >= kth[:, None] - 1e-5))
