"""The indexes (vector and full-text) and where they live under the results directory."""

from __future__ import annotations

import os
from pathlib import Path

VECTOR_SUBDIR = Path("index") / "vector"
FULLTEXT_SUBDIR = Path("index") / "fulltext"


def vector_dir(results_dir: str | os.PathLike) -> Path:
    """The vector index directory (vectors.hnsw, meta.sqlite, index.json) of a results tree."""
    return Path(results_dir) / VECTOR_SUBDIR


def fulltext_dir(results_dir: str | os.PathLike) -> Path:
    """The embedded (tantivy) full-text index directory of a results tree."""
    return Path(results_dir) / FULLTEXT_SUBDIR
