"""The full-text backend boundary: what the pipeline and search need from any engine, and how one is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

from ..errors import IngestError
from ..records import Chunk

BACKENDS = ("tantivy", "elasticsearch", "opensearch")


@dataclass(slots=True)
class Hit:
    """One search result: which chunk, where it is, how well it scored, and a piece of its text."""

    id: str
    ref: str
    he_ref: str
    book: str
    lang: str
    score: float
    snippet: str


class FullTextBackend(Protocol):
    """A full-text index of chunks, updated one book at a time (one writer at a time)."""

    def upsert_book(self, book: str, chunks: Iterable[Chunk]) -> int:
        """Replace every document of `book` with `chunks` in one commit; returns how many were added."""
        ...

    def delete_book(self, book: str) -> None:
        """Remove every document of `book`."""
        ...

    def search(self, query: str, k: int = 10, lang: str | None = None, book: str | None = None) -> list[Hit]:
        """The `k` best chunks for a plain-text query (BM25), optionally within one language or book."""
        ...

    def count(self, book: str | None = None) -> int:
        """Documents in the index, or in one book."""
        ...

    def close(self) -> None:
        """Release the index."""
        ...


def open_backend(config: dict) -> FullTextBackend:
    """The backend `config["backend"]` names (default "tantivy"), opened with the rest of `config`."""
    name = config.get("backend", "tantivy")
    if name == "tantivy":
        from .tantivy_index import TantivyBackend

        if not config.get("path"):
            raise ValueError("tantivy full-text backend needs config['path'], the index directory")
        return TantivyBackend(
            config["path"],
            create=config.get("create", True),
            heap_size=config.get("heap_size", 64_000_000),
            writer_threads=config.get("writer_threads", 1),
        )
    if name == "elasticsearch":
        from .elasticsearch_index import ElasticsearchBackend

        return ElasticsearchBackend(config)
    if name == "opensearch":
        from .opensearch_index import OpenSearchBackend

        return OpenSearchBackend(config)
    raise ValueError(f"unknown full-text backend {name!r}; available: {', '.join(BACKENDS)}")


def checked_chunks(book: str, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
    """`chunks`, refusing one of another book or a repeated id before anything is written."""
    seen: set[str] = set()
    for chunk in chunks:
        if chunk.book != book:
            raise IngestError(book, f"chunk {chunk.id} belongs to {chunk.book!r}", ref=chunk.ref)
        if chunk.id in seen:
            raise IngestError(book, f"chunk id {chunk.id} appears twice", ref=chunk.ref)
        seen.add(chunk.id)
        yield chunk
