"""What the Elasticsearch and OpenSearch backends share: config, index body, bulk loading, queries and hits.

Every request body is built here, so the OpenSearch tests (run against a real server on the wire) cover the
Elasticsearch backend too; the engine modules only make clients and add their vector field and kNN query.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from ..errors import IngestError
from ..normalize import QUOTED_PHRASE, index_form, search_form
from ..records import Chunk
from .fulltext import Hit, checked_chunks

log = logging.getLogger(__name__)

DEFAULT_INDEX = "sefaria-chunks"
SNIPPET_CHARS = 240
# A pasted passage becomes an OR of its words; this bounds the query's size (OpenSearch refuses queries of
# more than 1024 clauses by default).
MAX_QUERY_TERMS = 128
# A query longer than this is a pasted passage, not typed: its quotations are no required phrases.
PASSAGE_WORDS = 32
# Engines refuse to page past index.max_result_window (10,000 by default).
MAX_RESULTS = 10_000
# The physical index a first load creates behind the alias: fixed, so two writers starting at once agree on it.
INITIAL_SUFFIX = "initial"
SOURCE_FIELDS = ["ref", "he_ref", "book", "lang", "exact"]
# Keys that belong to the embedded backend; a config that also names them is still valid here.
_OTHER_BACKEND_KEYS = {"backend", "path", "heap_size", "writer_threads"}
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

# Words as the embedded index's tokenizer cuts them: runs of letters and digits (no underscore).
_TOKEN = re.compile(r"[^\W_]+")
# The embedded index drops tokens of this many UTF-8 bytes or more; so does this one, to match the same words.
MAX_TOKEN_BYTES = 40


@dataclass(slots=True)
class EngineConfig:
    """The `fulltext` config of a search-engine backend; credentials appear only as environment-variable names."""

    url: list[str]
    index: str = DEFAULT_INDEX
    create: bool = True
    username_env: str | None = None
    password_env: str | None = None
    api_key_env: str | None = None
    verify_certs: bool = True
    ca_certs: str | None = None
    request_timeout: float = 60.0
    bulk_chunk_size: int = 500
    bulk_max_bytes: int = 10_000_000
    max_retries: int = 5
    retry_initial_backoff: float = 2.0
    retry_max_backoff: float = 60.0
    shards: int | None = None
    replicas: int | None = None
    refresh_interval: str | None = None
    vector_dims: int | None = None
    phrase_slop: int = 0
    proximity_slop: int = 3

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> EngineConfig:
        """Checked config: a URL without credentials, a valid index name, only known keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known - _OTHER_BACKEND_KEYS
        if unknown:
            raise ValueError(f"unknown full-text config keys {sorted(unknown)}; known: {sorted(known)}")
        values = {k: v for k, v in config.items() if k in known}
        urls = values.get("url")
        if not urls:
            backend = config.get("backend")
            raise ValueError(f"full-text backend {backend!r} needs config['url'], e.g. http://127.0.0.1:9200")
        values["url"] = [urls] if isinstance(urls, str) else list(urls)
        for url in values["url"]:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"full-text url {redact_url(url)!r} is not an http(s) URL")
            if parts.username or parts.password:
                raise ValueError(
                    "full-text url must not hold credentials; name environment variables in "
                    "username_env/password_env or api_key_env instead"
                )
        result = cls(**values)
        if not _INDEX_NAME.match(result.index):
            raise ValueError(f"index name {result.index!r}: use lowercase letters, digits, '.', '_' and '-'")
        if result.bulk_chunk_size < 1 or result.bulk_max_bytes < 1 or result.max_retries < 0:
            raise ValueError("bulk_chunk_size and bulk_max_bytes must be positive, max_retries >= 0")
        if result.vector_dims is not None and result.vector_dims < 1:
            raise ValueError(f"vector_dims must be positive, not {result.vector_dims}")
        return result


def redact_url(url: str) -> str:
    """The URL without any user:password part, for messages and logs."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


@dataclass(slots=True, repr=False)
class Credentials:
    """Secrets read from the environment when a client is made; never printed."""

    username: str | None = None
    password: str | None = None
    api_key: str | None = None

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"


def read_credentials(config: EngineConfig) -> Credentials:
    """The secrets the config's *_env names point at; a named but unset variable is an error (named, not shown)."""

    def env(name: str | None) -> str | None:
        if name is None:
            return None
        value = os.environ.get(name)
        if not value:
            raise ValueError(f"environment variable {name} (named in the full-text config) is not set")
        return value

    creds = Credentials(env(config.username_env), env(config.password_env), env(config.api_key_env))
    if (creds.username is None) != (creds.password is None):
        raise ValueError("set both username_env and password_env, or neither")
    if creds.api_key is not None and creds.username is not None:
        raise ValueError("set either api_key_env or username_env/password_env, not both")
    return creds


def naive_form(text: str) -> str:
    """The words indexed in `naive` and queried there, split by spaces: search_form, Hebrew abbreviations
    joined, cut into letter-and-digit runs as the embedded index cuts them, so every engine matches alike."""
    tokens = _TOKEN.findall(index_form(search_form(text)))
    return " ".join(t for t in tokens if len(t.encode("utf-8")) < MAX_TOKEN_BYTES)


def _words(text: str) -> list[str]:
    """The distinct naive words of `text`, in order, at most MAX_QUERY_TERMS."""
    return list(dict.fromkeys(naive_form(text).split()))[:MAX_QUERY_TERMS]


def category_path(chunk: Chunk) -> str:
    """Sefaria's `path`: categories then the book, e.g. `Tanakh/Torah/Genesis`."""
    return "/".join([*chunk.categories, chunk.book])


def index_body(
    config: EngineConfig,
    vector_field: dict | None,
    engine_settings: dict | None = None,
    *,
    refresh_interval: str | None = None,
    aliases: dict | None = None,
) -> dict:
    """Settings and mappings of a chunk index; `vector_field` is the engine's own vector type, if configured."""
    index: dict[str, Any] = dict(engine_settings or {})
    if config.shards is not None:
        index["number_of_shards"] = config.shards
    if config.replicas is not None:
        index["number_of_replicas"] = config.replicas
    interval = refresh_interval or config.refresh_interval
    if interval is not None:
        index["refresh_interval"] = interval
    keyword = {"type": "keyword"}
    properties: dict[str, Any] = {
        "book": keyword,
        "categories": keyword,
        "path": keyword,
        "lang": keyword,
        "version_title": keyword,
        "license": keyword,
        "refs": keyword,
        "ref": keyword,
        "he_ref": keyword,
        "n_tokens": {"type": "integer"},
        # Which load wrote the document: a re-index deletes the book's documents another load wrote.
        "load_id": keyword,
        "exact": {"type": "text", "analyzer": "standard"},
        # Already cut into words in Python (naive_form): split at spaces only.
        "naive": {
            "type": "text",
            "analyzer": "naive_words",
            "fields": {"stem": {"type": "text", "analyzer": "naive_stems"}},
        },
    }
    if vector_field is not None:
        properties["vector"] = vector_field
    body: dict[str, Any] = {
        "settings": {
            "index": index,
            "analysis": {
                # Snowball English is the embedded index's English stemmer too.
                "filter": {"english_snowball": {"type": "snowball", "language": "English"}},
                "analyzer": {
                    "naive_words": {"type": "custom", "tokenizer": "whitespace", "filter": ["lowercase"]},
                    "naive_stems": {
                        "type": "custom",
                        "tokenizer": "whitespace",
                        "filter": ["lowercase", "english_snowball"],
                    },
                },
            },
        },
        "mappings": {"dynamic": "strict", "properties": properties},
    }
    if aliases:
        body["aliases"] = aliases
    return body


def document(chunk: Chunk, load_id: str, vector: Sequence[float] | None = None) -> dict:
    """The indexed source of one chunk."""
    doc = {
        "book": chunk.book,
        "categories": list(chunk.categories),
        "path": category_path(chunk),
        "lang": chunk.lang,
        "version_title": chunk.version_title,
        "license": chunk.license,
        "refs": list(chunk.refs),
        "ref": chunk.ref,
        "he_ref": chunk.he_ref,
        "n_tokens": chunk.n_tokens,
        "load_id": load_id,
        "exact": chunk.text,
        "naive": naive_form(chunk.search_text or chunk.text),
    }
    if vector is not None:
        doc["vector"] = [float(x) for x in vector]
    return doc


def book_documents(
    book: str,
    chunks: Iterable[Chunk],
    load_id: str,
    vectors: Mapping[str, Sequence[float]] | None = None,
    vector_dims: int | None = None,
) -> list[tuple[str, dict]]:
    """(id, source) for every chunk of `book`, checked before anything is written."""
    if vectors and vector_dims is None:
        raise IngestError(book, "vectors were given but the full-text config has no vector_dims")
    docs: list[tuple[str, dict]] = []
    for chunk in checked_chunks(book, chunks):
        vector = vectors.get(chunk.id) if vectors else None
        if vector is not None and len(vector) != vector_dims:
            cause = f"vector of chunk {chunk.id} has {len(vector)} dimensions, not {vector_dims}"
            raise IngestError(book, cause, ref=chunk.ref)
        docs.append((chunk.id, document(chunk, load_id, vector)))
    return docs


def bulk_actions(index: str, docs: Iterable[tuple[str, dict]]) -> Iterable[dict]:
    """Bulk `index` actions: the chunk id is the document id, so a re-run overwrites instead of duplicating."""
    return ({"_op_type": "index", "_index": index, "_id": doc_id, "_source": source} for doc_id, source in docs)


def book_query(book: str) -> dict:
    return {"query": {"bool": {"filter": [{"term": {"book": book}}]}}}


def stale_query(book: str, load_id: str) -> dict:
    """Documents of `book` that the load `load_id` did not write: chunks that no longer exist."""
    return {"query": {"bool": {"filter": [{"term": {"book": book}}], "must_not": [{"term": {"load_id": load_id}}]}}}


def filter_clauses(lang: str | None = None, book: str | None = None, path: str | None = None) -> list[dict]:
    """Non-scoring filters: language, book, and a category path with everything below it."""
    clauses: list[dict] = []
    if lang is not None:
        clauses.append({"term": {"lang": lang}})
    if book is not None:
        clauses.append({"term": {"book": book}})
    if path is not None:
        path = path.strip("/")
        below = [{"term": {"path": path}}, {"prefix": {"path": path + "/"}}]
        clauses.append({"bool": {"should": below, "minimum_should_match": 1}})
    return clauses


def search_body(
    query: str,
    k: int,
    *,
    lang: str | None = None,
    book: str | None = None,
    path: str | None = None,
    phrase_slop: int = 0,
    proximity_slop: int = 3,
) -> dict | None:
    """BM25 over `naive` (exact and stemmed) and `exact`: "quoted" spans are required phrases (within
    `phrase_slop`; in a passage over PASSAGE_WORDS words they only rank), other words must match one at least
    unless a phrase is required, and words near each other (within `proximity_slop`) rank higher; filters
    score nothing. None without a searchable word."""
    must: list[dict] = []
    should: list[dict] = []
    # Phrases are marked by straight quotes as typed; typographic quotes mark none, although search_form folds
    # them to '"'. In a pasted passage quotations only rank: the passage may cross a chunk boundary.
    passage = len(query.split()) > PASSAGE_WORDS
    for phrase in QUOTED_PHRASE.findall(query):
        if naive_form(phrase):
            (should if passage else must).append(
                {"match_phrase": {"naive": {"query": naive_form(phrase), "slop": phrase_slop}}}
            )
    rest = QUOTED_PHRASE.sub(" ", query)
    words = _words(rest)
    if words:
        text = " ".join(words)
        raw = " ".join(list(dict.fromkeys(rest.split()))[:MAX_QUERY_TERMS])
        alternatives = [{"match": {"naive": {"query": text}}}, {"match": {"naive.stem": {"query": text}}}]
        if raw:
            alternatives.append({"match": {"exact": {"query": raw}}})
        words_clause = {"bool": {"should": alternatives, "minimum_should_match": 1}}
        # Beside a required phrase the other words only rank (as in the embedded index); alone, one must match.
        (should if must else must).append(words_clause)
        if proximity_slop > 0 and len(words) > 1:
            sequence = " ".join(naive_form(rest).split()[:MAX_QUERY_TERMS])
            should.append({"match_phrase": {"naive": {"query": sequence, "slop": proximity_slop}}})
    if not must:
        return None
    return {
        "size": min(k, MAX_RESULTS),
        "track_total_hits": False,
        "_source": SOURCE_FIELDS,
        "query": {"bool": {"must": must, "should": should, "filter": filter_clauses(lang, book, path)}},
    }


def query_terms(query: str) -> set[str]:
    return set(naive_form(query).split())


def snippet(text: str, terms: set[str]) -> str:
    """About SNIPPET_CHARS of `text` from a little before the first word matching a query term
    (or sharing its first five letters, for inflections); the start of the text otherwise."""
    if not terms:
        return text[:SNIPPET_CHARS].strip()
    prefixes = {t[:5] for t in terms if len(t) >= 5}
    matches = list(re.finditer(r"\S+", text))
    forms = [naive_form(m.group()).split() for m in matches]
    for test in (lambda w: w in terms, lambda w: w[:5] in prefixes):
        for match, words in zip(matches, forms):
            if any(test(w) for w in words):
                start = text.rfind(" ", 0, max(0, match.start() - SNIPPET_CHARS // 4)) + 1
                return text[start : start + SNIPPET_CHARS].strip()
    return text[:SNIPPET_CHARS].strip()


def hits_from(response: Mapping, terms: set[str] | None) -> list[Hit]:
    """Hits of a search response; snippets around the query terms (or the text's start without terms)."""
    hits = []
    for h in response["hits"]["hits"]:
        src = h["_source"]
        text = src.get("exact", "")
        hits.append(
            Hit(
                id=h["_id"],
                ref=src["ref"],
                he_ref=src.get("he_ref") or "",
                book=src["book"],
                lang=src["lang"],
                score=float(h.get("_score") or 0.0),
                snippet=snippet(text, terms) if terms is not None else text[:SNIPPET_CHARS].strip(),
            )
        )
    return hits


def build_name(alias: str, now: datetime | None = None) -> str:
    """A new physical index behind `alias`: `<alias>-<UTC time to the microsecond>`."""
    now = now or datetime.now(timezone.utc)
    return f"{alias}-{now.strftime('%Y%m%d%H%M%S%f')}"


def item_reason(item: Mapping) -> str:
    """`id: type: reason (status)` of one failed bulk item."""
    (_, info), = item.items()
    error = info.get("error")
    if isinstance(error, Mapping):
        error = f"{error.get('type')}: {error.get('reason')}"
    return f"{info.get('_id')}: {error} (status {info.get('status')})"


class EngineBackend(ABC):
    """A chunk index on an Elasticsearch-like engine, reached through an alias; subclasses make the clients."""

    engine = "engine"

    def __init__(self, config: EngineConfig | Mapping[str, Any]):
        if not isinstance(config, EngineConfig):
            config = EngineConfig.from_dict(config)
        self.config = config
        self.alias = config.index
        self._creds = read_credentials(config)
        self._client = self._make_client(self._creds, sync=True)

    # Engine hooks -------------------------------------------------------------------------------------------

    @abstractmethod
    def _make_client(self, creds: Credentials, *, sync: bool):
        """The engine's sync or async client."""

    @abstractmethod
    def _streaming_bulk(self, client, actions: Iterable[dict]) -> AsyncIterator[tuple[bool, dict]]:
        """The engine's async_streaming_bulk over `actions`, with `_bulk_options()`."""

    def _bulk_options(self) -> dict:
        """Bounded bulk requests; refused documents come back as items (never raised), 429s are retried."""
        c = self.config
        return {"chunk_size": c.bulk_chunk_size, "max_chunk_bytes": c.bulk_max_bytes, "raise_on_error": False,
                "raise_on_exception": True, "max_retries": c.max_retries,
                "initial_backoff": c.retry_initial_backoff, "max_backoff": c.retry_max_backoff}

    def _vector_field(self) -> dict | None:
        return None

    def _engine_settings(self) -> dict:
        return {}

    @abstractmethod
    def _knn_body(self, vector: list[float], k: int, filters: list[dict]) -> dict:
        """The engine's filtered kNN request body."""

    # The engine's exceptions for 404 and for 400 (an index that already exists answers 400).
    _not_found: tuple[type[BaseException], ...] = ()
    _bad_request: tuple[type[BaseException], ...] = ()

    # Shared behaviour ---------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        urls = ", ".join(redact_url(u) for u in self.config.url)
        return f"{type(self).__name__}(url=[{urls}], index={self.alias!r})"

    __str__ = __repr__

    def _body(self, *, refresh_interval: str | None = None, aliases: dict | None = None) -> dict:
        vector = self._vector_field() if self.config.vector_dims else None
        settings = self._engine_settings() if self.config.vector_dims else {}
        return index_body(self.config, vector, settings, refresh_interval=refresh_interval, aliases=aliases)

    @property
    def client(self):
        """The engine's own (sync) client, for what this boundary does not cover."""
        return self._client

    def exists(self) -> bool:
        """Whether the alias (or an index of that name) exists."""
        return bool(self._client.indices.exists(index=self.alias))

    def _absent(self, empty):
        """What a read of a missing index answers: `empty` when a first load may still create it, else an error."""
        if self.config.create:
            return empty
        raise LookupError(f"no index or alias {self.alias!r} on {self}")

    async def _ensure(self, client) -> None:
        if await client.indices.exists(index=self.alias):
            return
        if not self.config.create:
            raise LookupError(f"no index or alias {self.alias!r} on {self}")
        physical = f"{self.alias}-{INITIAL_SUFFIX}"
        try:
            await client.indices.create(index=physical, body=self._body(aliases={self.alias: {}}))
            log.info("created index %s behind alias %s", physical, self.alias)
        except self._bad_request as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise
            # Another writer created it first; fine if the alias came with it.
            if not await client.indices.exists(index=self.alias):
                raise LookupError(f"index {physical} exists but alias {self.alias} does not; point the alias at it")

    async def aupsert_book(
        self,
        book: str,
        chunks: Iterable[Chunk],
        vectors: Mapping[str, Sequence[float]] | None = None,
        *,
        into: str | None = None,
        fresh: bool = False,
    ) -> int:
        """Write every chunk of `book` (into the alias, or into the rebuild index `into`), then delete the
        book's documents this load did not write (skipped when `fresh`: a new index this load alone fills).
        Any document still refused after the retries fails the book, and then nothing is deleted."""
        load_id = uuid.uuid4().hex
        docs = book_documents(book, chunks, load_id, vectors, self.config.vector_dims)
        started = time.perf_counter()
        target = into or self.alias
        client = self._make_client(self._creds, sync=False)
        try:
            stale = await self._load(client, book, docs, load_id, target, ensure=into is None, fresh=fresh)
        except IngestError:
            raise
        except Exception as exc:
            raise IngestError(book, f"loading into {target} on {self} failed: {exc}") from exc
        finally:
            await client.close()
        seconds = time.perf_counter() - started
        log.info(
            "%s: %d documents into %s (%d stale removed) in %.2f s, %.0f docs/s",
            book, len(docs), target, stale, seconds, len(docs) / seconds if seconds else 0.0,
        )
        return len(docs)

    async def _load(
        self, client, book: str, docs: list[tuple[str, dict]], load_id: str, target: str, *, ensure: bool, fresh: bool
    ) -> int:
        """Bulk-write `docs`, check every item, then delete the stale ones; returns how many were stale."""
        if ensure:
            await self._ensure(client)
        written, failed = 0, []
        async for ok, item in self._streaming_bulk(client, bulk_actions(target, docs)):
            if ok:
                written += 1
            else:
                failed.append(item)
        if failed:
            reasons = "; ".join(item_reason(item) for item in failed[:3])
            raise IngestError(
                book,
                f"{self.engine} rejected {len(failed)} of {len(docs)} documents ({reasons}); "
                "no document of the book was deleted",
            )
        if written != len(docs):
            raise IngestError(book, f"{self.engine} acknowledged {written} of {len(docs)} documents")
        if fresh:
            return 0
        # Stale documents are found by search, which sees only what a refresh has published.
        await client.indices.refresh(index=target)
        response = await client.delete_by_query(
            index=target, body=stale_query(book, load_id), refresh=True, conflicts="abort"
        )
        if response["failures"]:
            raise IngestError(book, f"deleting stale documents failed: {response['failures'][:3]}")
        return int(response["deleted"])

    def upsert_book(
        self,
        book: str,
        chunks: Iterable[Chunk],
        vectors: Mapping[str, Sequence[float]] | None = None,
        *,
        into: str | None = None,
    ) -> int:
        """Replace every document of `book` with `chunks`; returns how many were written (see aupsert_book,
        which callers inside a running event loop use instead)."""
        return asyncio.run(self.aupsert_book(book, chunks, vectors, into=into))

    def delete_book(self, book: str) -> None:
        """Remove every document of `book`."""
        try:
            self._client.delete_by_query(index=self.alias, body=book_query(book), refresh=True, conflicts="proceed")
        except self._not_found:
            self._absent(None)

    def count(self, book: str | None = None) -> int:
        """Documents behind the alias, or in one book."""
        body = book_query(book) if book is not None else {"query": {"match_all": {}}}
        try:
            return int(self._client.count(index=self.alias, body=body)["count"])
        except self._not_found:
            return self._absent(0)

    def search(
        self, query: str, k: int = 10, lang: str | None = None, book: str | None = None, path: str | None = None
    ) -> list[Hit]:
        """The `k` best chunks for a plain-text query, optionally within a language, book or category path."""
        body = search_body(
            query, k, lang=lang, book=book, path=path,
            phrase_slop=self.config.phrase_slop, proximity_slop=self.config.proximity_slop,
        )
        if body is None or k <= 0:
            return []
        try:
            response = self._client.search(index=self.alias, body=body)
        except self._not_found:
            return self._absent([])
        return hits_from(response, query_terms(query))

    def vector_search(
        self,
        vector: Sequence[float],
        k: int = 10,
        lang: str | None = None,
        book: str | None = None,
        path: str | None = None,
    ) -> list[Hit]:
        """The `k` chunks nearest to `vector` by the engine's kNN search (needs vector_dims), with filters."""
        if not self.config.vector_dims:
            raise ValueError("vector search needs vector_dims in the full-text config (and vectors at upsert)")
        if len(vector) != self.config.vector_dims:
            raise ValueError(f"query vector has {len(vector)} dimensions, the index {self.config.vector_dims}")
        if k <= 0:
            return []
        body = self._knn_body([float(x) for x in vector], min(k, MAX_RESULTS), filter_clauses(lang, book, path))
        try:
            response = self._client.search(index=self.alias, body=body)
        except self._not_found:
            return self._absent([])
        return hits_from(response, None)

    # Full rebuild behind the alias ------------------------------------------------------------------------

    def start_rebuild(self) -> str:
        """Create a fresh index (refresh off) for a full rebuild; load books with `upsert_book(..., into=name)`."""
        name = build_name(self.alias)
        self._client.indices.create(index=name, body=self._body(refresh_interval="-1"))
        log.info("rebuilding %s into %s", self.alias, name)
        return name

    def _check_build(self, name: str) -> None:
        if not name.startswith(self.alias + "-"):
            raise ValueError(f"{name!r} is not a rebuild index of {self.alias!r}")

    def finish_rebuild(self, name: str) -> None:
        """Restore refresh, publish, point the alias at `name` in one atomic step, then drop the old indices."""
        self._check_build(name)
        restore = {"index": {"refresh_interval": self.config.refresh_interval}}
        self._client.indices.put_settings(index=name, body=restore)
        self._client.indices.refresh(index=name)
        try:
            holders = list(self._client.indices.get_alias(name=self.alias))
        except self._not_found:
            holders = []
        actions: list[dict] = [{"remove": {"index": old, "alias": self.alias}} for old in holders]
        if not holders and self._client.indices.exists(index=self.alias):
            # A concrete index of the alias's name (made by hand): replace it by the alias in the same step.
            actions.append({"remove_index": {"index": self.alias}})
        actions.append({"add": {"index": name, "alias": self.alias}})
        self._client.indices.update_aliases(body={"actions": actions})
        log.info("alias %s now points at %s", self.alias, name)
        for old in holders:
            if old != name and old.startswith(self.alias + "-"):
                self._client.indices.delete(index=old)
            elif old != name:
                log.warning("alias %s moved off %s, which is not ours to delete", self.alias, old)

    def abort_rebuild(self, name: str) -> None:
        """Drop a rebuild index that will not be published; the alias is untouched."""
        self._check_build(name)
        try:
            self._client.indices.delete(index=name)
        except self._not_found:
            pass

    def rebuild(self, books: Iterable[tuple]) -> int:
        """Load (book, chunks) or (book, chunks, vectors) items into a fresh index, then switch the alias to it.
        Searchers see the old index until the switch; on any error the new index is dropped."""
        name = self.start_rebuild()
        total = 0
        loaded: set[str] = set()
        try:
            for item in books:
                book, chunks, *rest = item
                if book in loaded:
                    raise IngestError(book, "appears twice in one rebuild")
                loaded.add(book)
                total += asyncio.run(self.aupsert_book(book, chunks, rest[0] if rest else None, into=name, fresh=True))
            self.finish_rebuild(name)
        except BaseException:
            self.abort_rebuild(name)
            raise
        return total

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> EngineBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
