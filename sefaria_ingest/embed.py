"""Sentence embeddings for chunks: length-bucketed batches, offline models, a per-model cache shared by jobs."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import orjson

from .atomic import atomic_write
from .records import Chunk
from .tokens import DEFAULT_MODEL, resolve_model_path

# Texts embedded between cache writes: a killed job keeps what it finished.
_CACHE_FLUSH = 2048
# SQLite's bound-parameter limit is 999 on old builds.
_SQL_BATCH = 900
# Texts per forward pass. Length-sorted batches of 16 ran 1.3x faster than 64 on 2 idle cores (less padding,
# attention scores that stay in cache) and within 7% of it on contended cores (benchmarks/bench_embed_options.py).
DEFAULT_BATCH_SIZE = 16


class Embedder:
    """A sentence-transformers model loaded lazily and offline; `encode` gives L2-normalised float32 rows."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str = "auto",
        threads: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name = model_name
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self._model = None

    @property
    def model(self):
        """The loaded SentenceTransformer (importing torch costs seconds, so only on first use)."""
        if self._model is None:
            # Pipelines run without network: only installed or cached models; a user may override.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer

            if self.threads:
                torch.set_num_threads(self.threads)
            if self.device == "auto":  # a GPU where one exists (cluster embed jobs ask for one), else the CPU
                self.device = "cuda" if torch.cuda.is_available() else "cpu"
            self._model = SentenceTransformer(
                resolve_model_path(self.model_name), device=self.device, local_files_only=True
            )
        return self._model

    @property
    def dim(self) -> int:
        """Width of the vectors this model produces."""
        model = self.model
        # Renamed in sentence-transformers 5; older releases only have the long name.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` in order; batches hold texts of similar length so little compute goes to padding."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            vecs = self.model.encode(
                [texts[i] for i in idx],
                batch_size=len(idx),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            vecs = np.asarray(vecs, dtype=np.float32)
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
        return normalise_rows(out)


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows left as they are), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return (vectors / norms).astype(np.float32, copy=False)


def model_slug(model_name: str) -> str:
    """A file-name-safe form of a model name ("org/model" -> "org--model")."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name.replace("/", "--")).strip("-.")
    if not slug:
        raise ValueError(f"model name {model_name!r} has no usable characters for a file name")
    return slug


def text_key(text: str) -> bytes:
    """Cache key of a text: its BLAKE2b digest (the model is fixed per cache file)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).digest()


class EmbeddingCache:
    """Vectors by text hash in one SQLite file per model, safe for parallel per-book jobs (WAL, busy wait)."""

    def __init__(self, path_dir: str | os.PathLike, model_name: str, timeout_s: float = 120.0):
        self.model_name = model_name
        self.path = Path(path_dir) / f"embeddings-{model_slug(model_name)}.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._db.execute("PRAGMA page_size = 8192")  # only takes effect on a new file: five vectors a page
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        # A rowid table: a vector (1.5 kB for 384 floats) fits in one page there, not in a WITHOUT ROWID b-tree.
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")

    def get_many(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vector of each text that has one."""
        by_key = {text_key(t): t for t in texts}
        keys = list(by_key)
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), _SQL_BATCH):
            part = keys[start : start + _SQL_BATCH]
            marks = ",".join("?" * len(part))
            for key, blob in self._db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part):
                found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text in one transaction; texts already cached keep their vector."""
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        rows = [(text_key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO vectors (key, vec) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(slots=True)
class EmbedStats:
    """What one embedding run did: chunks selected by language, served from cache, computed, skipped."""

    selected: int = 0
    cached: int = 0
    computed: int = 0
    skipped: int = 0
    seconds: float = 0.0


def embed_chunks(
    chunks: Iterable[Chunk],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    languages: Iterable[str] = ("en",),
) -> tuple[list[str], np.ndarray, EmbedStats]:
    """Vectors for the chunks whose language the model serves, in chunk order; only uncached texts are computed.

    With nothing to embed the vectors have shape (0, 0), so a Hebrew-only book never loads the model.
    """
    started = time.perf_counter()
    wanted = set(languages)
    stats = EmbedStats()
    ids: list[str] = []
    texts: list[str] = []
    for chunk in chunks:
        if chunk.lang in wanted:
            ids.append(chunk.id)
            texts.append(chunk.text)
        else:
            stats.skipped += 1
    stats.selected = len(ids)
    if not ids:
        stats.seconds = time.perf_counter() - started
        return ids, np.zeros((0, 0), dtype=np.float32), stats

    unique = list(dict.fromkeys(texts))
    known = cache.get_many(unique) if cache is not None else {}
    missing = [t for t in unique if t not in known]
    stats.cached = sum(1 for t in texts if t in known)
    for start in range(0, len(missing), _CACHE_FLUSH):
        part = missing[start : start + _CACHE_FLUSH]
        vecs = embedder.encode(part)
        if cache is not None:
            cache.put_many(part, vecs)
        known.update(zip(part, vecs))
    stats.computed = len(missing)

    dims = {len(v) for v in known.values()}
    if len(dims) != 1:
        where = cache.path if cache is not None else embedder.model_name
        raise ValueError(f"{where}: cached vectors have mixed widths {sorted(dims)}; delete the cache file")
    vectors = normalise_rows(np.stack([known[t] for t in texts]))
    stats.seconds = time.perf_counter() - started
    return ids, vectors, stats


def write_book_vectors(
    npy_path: str | os.PathLike, ids_path: str | os.PathLike, ids: Sequence[str], vectors: np.ndarray
) -> None:
    """Write a book's vectors (.npy) and their chunk ids (JSON list, same order), each atomically."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"{npy_path}: {len(ids)} ids but vectors of shape {vectors.shape}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{ids_path}: chunk ids are not unique")
    with atomic_write(npy_path, "wb") as fh:
        np.save(fh, vectors, allow_pickle=False)
    with atomic_write(ids_path, "wb") as fh:
        fh.write(orjson.dumps(list(ids)))


def read_book_vectors(npy_path: str | os.PathLike, ids_path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read what `write_book_vectors` wrote, checking that ids and rows agree."""
    vectors = np.load(npy_path, allow_pickle=False)
    ids = orjson.loads(Path(ids_path).read_bytes())
    if not isinstance(ids, list) or vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"{npy_path}: {vectors.shape} vectors do not match the {ids_path} id list")
    return ids, vectors.astype(np.float32, copy=False)


def read_vectors_by_chunk(npy_path: str | os.PathLike, ids_path: str | os.PathLike) -> dict[str, list[float]]:
    """A book's vectors keyed by chunk id, the form the full-text engines take them in."""
    ids, vectors = read_book_vectors(npy_path, ids_path)
    return dict(zip(ids, vectors.tolist()))
