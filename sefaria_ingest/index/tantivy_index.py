"""The embedded full-text index: tantivy (BM25) over each chunk's clean text and its normalised search form."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import tantivy
from tantivy import Occur, Query

from ..errors import IngestError
from ..normalize import QUOTED_PHRASE as _PHRASE
from ..normalize import index_form, search_form
from ..records import Chunk
from .fulltext import Hit, checked_chunks

SNIPPET_CHARS = 240
# A pasted passage becomes an OR of its words; this bounds the query's size.
MAX_QUERY_TERMS = 128
# The query's words in order (a little slop for dropped punctuation words) rank far above scattered matches.
PHRASE_SLOP = 2
PHRASE_BOOST = 5.0
# Beside at most this many unquoted words, "quoted" spans are typed intent and required.
TYPED_QUERY_WORDS = 8

# Query-side twins of tantivy's built-in "default" and "en_stem" analyzers, which index the two text fields:
# queries are turned into terms here, so no user input ever reaches tantivy's query parser.
_WORDS = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.remove_long(40))
    .filter(tantivy.Filter.lowercase())
    .build()
)
_STEMS = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.remove_long(40))
    .filter(tantivy.Filter.lowercase())
    .filter(tantivy.Filter.stemmer("english"))
    .build()
)


def _build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    for name in ("id", "book", "lang", "ref", "he_ref", "categories"):
        # Raw: one exact term per value, for delete-by-book, filters and lookups.
        sb.add_text_field(name, stored=True, tokenizer_name="raw")
    # The clean text, stored for display and snippets; never matched (cantillation would split its words).
    sb.add_text_field("text", stored=True, tokenizer_name="en_stem", index_option="basic")
    # The search form, matched exactly (with positions, for phrases) and English-stemmed.
    sb.add_text_field("search", stored=False, tokenizer_name="default")
    sb.add_text_field("stem", stored=False, tokenizer_name="en_stem", index_option="freq")
    return sb.build()


SCHEMA = _build_schema()


def _unique(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(tokens))[:MAX_QUERY_TERMS]


def _phrase(schema: tantivy.Schema, words: list[str], boost: float) -> Query | None:
    if len(words) < 2:
        return None
    return Query.boost_query(Query.phrase_query(schema, "search", words[:MAX_QUERY_TERMS], PHRASE_SLOP), boost)


def build_query(schema: tantivy.Schema, query: str, lang: str | None = None, book: str | None = None) -> Query | None:
    """A BM25 query for plain text: OR of its words (exact and English-stemmed search forms), with the words in
    order as a boosted phrase. "Quoted" spans are required phrases in a typed query (few other words); inside a
    pasted passage they only boost (its quotes may fall in different chunks). Filters score nothing.
    None without a searchable word."""
    norm = index_form(search_form(query))
    rest = _PHRASE.sub(" ", norm)
    rest_words = _WORDS.analyze(rest)
    quoted = [_WORDS.analyze(p) for p in _PHRASE.findall(norm)]
    quoted = [words for words in quoted if words]
    required: list[tuple[Occur, Query]] = []
    if quoted and len(rest_words) <= TYPED_QUERY_WORDS:
        for words in quoted:
            single = Query.term_query(schema, "search", words[0]) if len(words) == 1 else None
            required.append((Occur.Must, single or Query.phrase_query(schema, "search", words)))
    should = [(Occur.Should, Query.term_query(schema, "search", w)) for w in _unique(_WORDS.analyze(norm))]
    should += [(Occur.Should, Query.term_query(schema, "stem", s)) for s in _unique(_STEMS.analyze(norm))]
    if not required and not should:
        return None
    phrases = [_phrase(schema, _WORDS.analyze(norm), PHRASE_BOOST)]
    if not required:
        phrases += [_phrase(schema, words, PHRASE_BOOST) for words in quoted]
    should += [(Occur.Should, q) for q in phrases if q is not None]
    if required:
        required += should  # beside required phrases, the other words only rank
    else:
        # Nested, so that the filters below (required clauses) do not make every word optional.
        required.append((Occur.Must, Query.boolean_query(should)))
    for field, value in (("lang", lang), ("book", book)):
        if value is not None:
            required.append((Occur.Must, Query.const_score_query(Query.term_query(schema, field, value), 0.0)))
    return Query.boolean_query(required)


def _snippet_query(schema: tantivy.Schema, query: str) -> Query | None:
    """The query's stems against the stored `text` field, for tantivy to pick and cut the best fragment."""
    stems = _unique(_STEMS.analyze(index_form(search_form(query))))
    if not stems:
        return None
    return Query.boolean_query([(Occur.Should, Query.term_query(schema, "text", s)) for s in stems])


def _window(text: str, terms: set[str]) -> str:
    """About SNIPPET_CHARS of `text` from a little before the first word whose search form is a query term."""
    for match in re.finditer(r"\S+", text):
        form = index_form(search_form(match.group()))
        if terms.intersection(_WORDS.analyze(form)) or terms.intersection(_STEMS.analyze(form)):
            start = text.rfind(" ", 0, max(0, match.start() - SNIPPET_CHARS // 4)) + 1
            return text[start : start + SNIPPET_CHARS].strip()
    return text[:SNIPPET_CHARS].strip()


class TantivyBackend:
    """A tantivy index directory; each book is replaced as a whole in one commit."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        create: bool = True,
        heap_size: int = 64_000_000,
        writer_threads: int = 1,
    ):
        self.path = Path(path)
        self.heap_size = heap_size
        self.writer_threads = writer_threads
        exists = self.path.is_dir() and tantivy.Index.exists(str(self.path))
        if not exists and not create:
            raise FileNotFoundError(f"no full-text index at {self.path}")
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._index = tantivy.Index(SCHEMA, path=str(self.path), reuse=True)
        except ValueError as exc:
            raise ValueError(
                f"{self.path}: not an index of this version's schema ({exc}); delete it and re-index"
            ) from exc
        self._schema = self._index.schema

    def _writer(self, book: str) -> tantivy.IndexWriter:
        try:
            return self._index.writer(heap_size=self.heap_size, num_threads=self.writer_threads)
        except ValueError as exc:
            raise IngestError(book, f"full-text index {self.path} is locked by another writer: {exc}") from exc

    def _commit(self, book: str, writer: tantivy.IndexWriter, docs: list[tantivy.Document]) -> None:
        try:
            writer.delete_documents_by_term("book", book)
            for doc in docs:
                writer.add_document(doc)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()
        self._index.reload()

    def upsert_book(self, book: str, chunks: Iterable[Chunk]) -> int:
        """Replace every document of `book` with `chunks` in one commit; returns how many were added."""
        docs = []
        for chunk in checked_chunks(book, chunks):
            form = index_form(chunk.search_text or search_form(chunk.text))
            doc = tantivy.Document(
                id=chunk.id,
                book=chunk.book,
                lang=chunk.lang,
                ref=chunk.ref,
                he_ref=chunk.he_ref,
                text=chunk.text,
                search=form,
                stem=form,
            )
            for category in chunk.categories:
                doc.add_text("categories", category)
            docs.append(doc)
        self._commit(book, self._writer(book), docs)
        return len(docs)

    def delete_book(self, book: str) -> None:
        """Remove every document of `book`."""
        self._commit(book, self._writer(book), [])

    def search(self, query: str, k: int = 10, lang: str | None = None, book: str | None = None) -> list[Hit]:
        """The `k` best chunks for a plain-text query; [] when it has no searchable word."""
        q = build_query(self._schema, query, lang, book)
        if q is None or k <= 0:
            return []
        searcher = self._index.searcher()
        found = searcher.search(q, k).hits
        if not found:
            return []
        snippet_query = _snippet_query(self._schema, query)
        snippets = None
        if snippet_query is not None:
            snippets = tantivy.SnippetGenerator.create(searcher, snippet_query, self._schema, "text")
            snippets.set_max_num_chars(SNIPPET_CHARS)
        form = index_form(search_form(query))
        terms = set(_WORDS.analyze(form)) | set(_STEMS.analyze(form))
        hits = []
        for score, address in found:
            doc = searcher.doc(address)
            text = doc.get_first("text") or ""
            fragment = snippets.snippet_from_doc(doc).fragment().strip() if snippets is not None else ""
            snippet = fragment or _window(text, terms)
            hits.append(
                Hit(
                    id=doc.get_first("id"),
                    ref=doc.get_first("ref"),
                    he_ref=doc.get_first("he_ref") or "",
                    book=doc.get_first("book"),
                    lang=doc.get_first("lang"),
                    score=float(score),
                    snippet=snippet,
                )
            )
        return hits

    def count(self, book: str | None = None) -> int:
        """Live documents in the index, or in one book."""
        q = Query.all_query() if book is None else Query.term_query(self._schema, "book", book)
        return self._index.searcher().search(q, 1, count=True).count

    def close(self) -> None:
        """Drop the index handle (writers are per call, so nothing is left open)."""
        self._index = None

    def __enter__(self) -> TantivyBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
