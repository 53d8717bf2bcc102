"""search_form: Hebrew matches with or without niqqud; the same form for indexed text and queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sefaria_ingest.clean import clean_text
from sefaria_ingest.normalize import search_form


@pytest.fixture(scope="module")
def shared() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared"


def test_vocalised_verse_matches_plain_spelling(shared):
    genesis = json.loads((shared / "sefaria-sample/json/Tanach/Torah/Genesis/Hebrew/merged.json").read_text("utf-8"))
    verse = clean_text(genesis["text"][0][0])  # Genesis 1:1 with niqqud and cantillation
    assert any(0x0591 <= ord(ch) <= 0x05C7 for ch in verse)
    plain = "בראשית ברא אלהים את השמים ואת הארץ"
    assert search_form(verse) == search_form(plain) == "בראשית ברא אלהימ את השמימ ואת הארצ"


def test_maqaf_sof_pasuq_and_zero_width_joiner(shared):
    psalms = json.loads((shared / "sefaria-sample/json/Tanach/Writings/Psalms/Hebrew/merged.json").read_text("utf-8"))
    raw = psalms["text"][29][10]  # Psalms 30:11, with a ZWJ inside הֱ‍ֽיֵה
    assert search_form(raw) == "שמע יהוה וחנני יהוה היה עזר לי"
    assert search_form(clean_text(raw)) == search_form(raw)


def test_final_letters_fold():
    assert search_form("ךםןףץ") == "כמנפצ"
    assert search_form("מלך") == search_form("מלכ")


@pytest.mark.parametrize("spelling", ['רש"י', "רש״י", "רש''י", "רש“י", "רש”י"])
def test_gershayim_variants_unify(spelling):
    assert search_form(spelling) == 'רש"י'


@pytest.mark.parametrize("spelling", ["ה'", "ה׳", "ה’", "ה‘"])
def test_geresh_variants_unify(spelling):
    assert search_form(spelling) == "ה'"


def test_paseq_and_nun_hafukha_separate_words():
    assert search_form("אֱלֹהִים ׀ אֶל") == "אלהימ אל"
    assert search_form("א׆ב") == "א ב"


def test_presentation_forms_decompose():
    # U+FB2E alef with patah, U+FB2A shin with shin dot, U+FB4B vav with holam.
    assert search_form("\ufb2e\ufb2a\ufb4b") == "אשו"


def test_latin_casefolded_accents_kept_whitespace_collapsed():
    assert search_form("  Rashi ON\tGenesis\n") == "rashi on genesis"
    assert search_form("Straße CAFÉ") == "strasse café"
    assert search_form("Jacob’s") == "jacob's"


def test_invisible_marks_dropped_from_queries():
    assert search_form("\u200fשלום\u200e \ufeffעולם") == "שלומ עולמ"


_RELEVANT = st.characters(
    codec="utf-8",
    categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf"),
    exclude_characters="\x00",
)
_HEBREWISH = st.sampled_from(
    [chr(c) for c in range(0x0591, 0x05F5)]
    + list("abcXYZ ÉéßİıǅＡ'\"`’‘“”\u2032\u2033\u2034\u200d\u200f\u00ad\t\n-")
    + [chr(c) for c in range(0xFB1D, 0xFB50)]
)


@settings(max_examples=300, deadline=None)
@given(st.text(_HEBREWISH, max_size=40))
def test_idempotent_on_hebrew_and_latin(text):
    once = search_form(text)
    assert search_form(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(_RELEVANT, max_size=40))
def test_idempotent_on_any_text(text):
    once = search_form(text)
    assert search_form(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(_HEBREWISH, max_size=40))
def test_points_never_survive(text):
    out = search_form(text)
    assert not any(0x0591 <= ord(ch) <= 0x05C7 for ch in out)
    assert not any(ch in out for ch in "ךםןףץ")
    assert out == " ".join(out.split())
