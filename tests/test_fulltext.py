"""The tantivy full-text backend: per-book upserts, deletes, Hebrew with and without niqqud, hostile queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sefaria_ingest.errors import IngestError
from sefaria_ingest.index.fulltext import Hit, open_backend
from sefaria_ingest.index.tantivy_index import TantivyBackend
from sefaria_ingest.records import Chunk

from .chunk_helpers import make_chunk

BOOKS = {"Ruth": "Writings", "Jonah": "Prophets"}


def load_book(sample_dir: Path, book: str, lang: str) -> list[Chunk]:
    language = "English" if lang == "en" else "Hebrew"
    path = sample_dir / "json" / "Tanach" / BOOKS[book] / book / language / "merged.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        make_chunk(book, lang, c, v, text, BOOKS.get(book, "Other"))
        for c, chapter in enumerate(data["text"], 1)
        for v, text in enumerate(chapter, 1)
        if text.strip()
    ]


@pytest.fixture
def backend(tmp_path):
    with TantivyBackend(tmp_path / "ft") as b:
        yield b


@pytest.fixture(scope="module")
def sample(sample_dir):
    return {(b, lang): load_book(sample_dir, b, lang) for b in BOOKS for lang in ("en", "he")}


def upsert_all(backend, sample, book):
    return backend.upsert_book(book, sample[(book, "en")] + sample[(book, "he")])


def test_upsert_twice_leaves_no_duplicates(backend, sample):
    n_ruth = upsert_all(backend, sample, "Ruth")
    n_jonah = upsert_all(backend, sample, "Jonah")
    assert n_ruth == len(sample[("Ruth", "en")]) + len(sample[("Ruth", "he")])
    assert backend.count() == n_ruth + n_jonah
    assert upsert_all(backend, sample, "Ruth") == n_ruth
    assert backend.count() == n_ruth + n_jonah and backend.count("Ruth") == n_ruth
    hits = backend.search("Whither thou goest, I will go", k=50)
    assert len({h.id for h in hits}) == len(hits)
    assert sum(h.ref == "Ruth 1:16" for h in hits) == 1
    # A re-index with fewer chunks drops the ones that are gone.
    backend.upsert_book("Ruth", sample[("Ruth", "en")][:10])
    assert backend.count("Ruth") == 10 and backend.count("Jonah") == n_jonah


def test_delete_book_removes_only_that_book(tmp_path, backend, sample):
    upsert_all(backend, sample, "Ruth")
    n_jonah = upsert_all(backend, sample, "Jonah")
    backend.delete_book("Ruth")
    assert backend.count("Ruth") == 0 and backend.count() == n_jonah
    assert backend.search("Naomi", k=10) == []
    assert backend.search("Nineveh", k=5)[0].book == "Jonah"
    # Another process opening the directory sees the same state.
    with open_backend({"backend": "tantivy", "path": str(tmp_path / "ft"), "create": False}) as other:
        assert other.count() == n_jonah


def test_hebrew_matches_with_and_without_niqqud(backend):
    pointed = "וַיְהִ֗י בִּימֵי֙ שְׁפֹ֣ט הַשֹּׁפְטִ֔ים וַיְהִ֥י רָעָ֖ב בָּאָ֑רֶץ"
    plain = "אמר רבי יוחנן משום רבי שמעון בן יוחאי"
    backend.upsert_book("Ruth", [make_chunk("Ruth", "he", 1, 1, pointed, BOOKS["Ruth"])])
    english = make_chunk("Berakhot", "en", 7, 2, "Rabbi Yohanan said")
    backend.upsert_book("Berakhot", [make_chunk("Berakhot", "he", 7, 2, plain), english])
    for query in ("רעב בארץ", "רָעָב בָּאָרֶץ", "רָעָ֖ב", "הַשֹּׁפְטִים", "השפטים"):
        assert [h.id for h in backend.search(query, k=5)] == ["Ruth|he|1:1"], query
    # Final letters: the indexed "יוחנן" / "שמעון" match whether the query ends in a final or a plain nun.
    for query in ("יוחנן", "יוחננ", "יוֹחָנָן", "שִׁמְעוֹן"):
        assert [h.id for h in backend.search(query, k=5)] == ["Berakhot|he|7:2"], query
    assert backend.search("ירושלים", k=5) == []
    hit = backend.search("רעב", k=1)[0]
    assert "רָעָ֖ב" in hit.snippet  # the snippet is the text as written, points and all


def test_hebrew_abbreviations_match_with_any_gershayim(backend):
    backend.upsert_book("Rashi", [make_chunk("Rashi", "he", 1, 1, 'פירש רש"י כאן')])
    for query in ('רש"י', "רש״י", "רשי"):
        assert [h.id for h in backend.search(query, k=5)] == ["Rashi|he|1:1"], query


def test_english_stemming_phrases_and_filters(backend, sample):
    upsert_all(backend, sample, "Ruth")
    upsert_all(backend, sample, "Jonah")
    # "gleaning" is never written in Ruth's text as such; "glean" / "gleaned" are.
    stemmed = backend.search("gleaning", k=5)
    assert stemmed and all(h.book == "Ruth" for h in stemmed)
    phrase = backend.search('"whither thou goest"', k=10)
    assert [h.ref for h in phrase] == ["Ruth 1:16"]
    assert "goest" in phrase[0].snippet
    # The same words out of order are no phrase; words beside a phrase rank but are not required.
    assert backend.search('"goest thou whither"', k=10) == []
    assert [h.ref for h in backend.search('Nineveh "whither thou goest"', k=10)] == ["Ruth 1:16"]
    assert [h.ref for h in backend.search('"whither thou goest" lodge', k=10, lang="en")] == ["Ruth 1:16"]
    assert all(h.lang == "he" for h in backend.search("יונה", k=20, lang="he"))
    assert backend.search("Jonah", k=10, lang="he") == []
    assert {h.book for h in backend.search("the", k=200, book="Jonah")} == {"Jonah"}
    hit = backend.search("Nineveh that great city", k=1)[0]
    assert isinstance(hit, Hit) and hit.book == "Jonah" and hit.lang == "en" and hit.score > 0


def test_every_indexed_word_is_findable(backend, sample):
    # The query-side analyzers must split and fold exactly as the index did, in both languages.
    chunks = [sample[("Ruth", "en")][15], sample[("Ruth", "he")][15], sample[("Jonah", "he")][0]]
    backend.upsert_book("Ruth", chunks[:2])
    backend.upsert_book("Jonah", chunks[2:])
    total = backend.count()
    for c in chunks:
        for word in c.text.split():
            if not any(ch.isalnum() for ch in word):
                continue
            ids = [h.id for h in backend.search(word, k=total, book=c.book)]
            assert c.id in ids, (c.ref, word)


ODD_QUERIES = [
    'said: "hear',
    "(a OR",
    "a AND",
    "NOT",
    "-x",
    "+",
    "foo^2",
    "title:Ruth",
    "*",
    "?",
    "~2",
    "[1 TO 5]",
    "{",
    "\\",
    "'",
    '"',
    '""',
    "''",
    'רש"י',
    "ג׳",
    "אבא מרי ז\"ל: (ת\"ח)",
    "/regex/",
    "\u200f\u202b",
    "\x00",
    " ",
    "a" * 5000,
    "word " * 2000,
]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_odd_queries_do_not_crash(backend, sample, query):
    upsert_all(backend, sample, "Ruth")
    hits = backend.search(query, k=5)
    assert isinstance(hits, list) and all(isinstance(h, Hit) for h in hits)


def test_long_query_finds_its_own_verse(backend, sample):
    upsert_all(backend, sample, "Ruth")
    upsert_all(backend, sample, "Jonah")
    longest = max(sample[("Ruth", "en")], key=lambda c: len(c.text))
    assert backend.search(longest.text * 5, k=1)[0].id == longest.id


def test_upsert_rejects_wrong_or_duplicate_chunks(backend, sample):
    with pytest.raises(IngestError, match="Jonah"):
        backend.upsert_book("Ruth", sample[("Jonah", "en")][:1])
    with pytest.raises(IngestError, match="twice"):
        backend.upsert_book("Ruth", sample[("Ruth", "en")][:1] * 2)
    assert backend.count() == 0


def test_one_writer_at_a_time(tmp_path, backend, sample):
    other = TantivyBackend(tmp_path / "ft")
    held = backend._writer("Ruth")
    try:
        with pytest.raises(IngestError, match="locked"):
            other.upsert_book("Ruth", sample[("Ruth", "en")][:3])
    finally:
        held.rollback()
        held.wait_merging_threads()
    assert other.upsert_book("Ruth", sample[("Ruth", "en")][:3]) == 3


def test_open_backend_choices(tmp_path):
    with pytest.raises(ValueError, match="'solr'.*tantivy"):
        open_backend({"backend": "solr", "path": str(tmp_path / "solr")})
    with pytest.raises(ValueError, match="path"):
        open_backend({"backend": "tantivy"})
    with pytest.raises(FileNotFoundError):
        open_backend({"backend": "tantivy", "path": str(tmp_path / "missing"), "create": False})
    with open_backend({"path": str(tmp_path / "new")}) as created:
        assert created.count() == 0
