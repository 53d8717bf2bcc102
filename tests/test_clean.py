"""clean_text on real Sefaria markup from the shared sample, and on broken markup."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from sefaria_ingest.clean import clean_text, strip_invisible


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@pytest.fixture(scope="module")
def shared() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared"


def text_at(shared: Path, relpath: str, *path):
    """One node of a merged.json / recorded response, by keys and 0-based indices."""
    node = json.loads((shared / relpath).read_text(encoding="utf-8"))
    for key in path:
        node = node[key]
    return node


OBADIAH_EN = "sefaria-api/examples/export/json/Tanakh/Prophets/Obadiah/English/merged.json"
MICAH = "sefaria-api/examples/live-fixtures/sefaria-frontend-toolkit/micah-6-8-2026-09-28.json"
FIXTURES = "sefaria-api/examples/live-fixtures/sefaria-web-components/"
SHULCHAN_ARUKH_1_1 = FIXTURES + "v3-text-shulchan-arukh-long-2026-09-02.json"
GENESIS_1_1 = FIXTURES + "v3-text-genesis-bilingual-2026-09-02.json"
SAMPLE = "sefaria-sample/json/"


def test_poetry_spans_footnote_marker_and_body(shared):
    raw = text_at(shared, OBADIAH_EN, "text", 0, 5)  # Obadiah 1:6
    assert 'class="footnote"' in raw
    assert clean_text(raw) == "How thoroughly rifled is Esau, How ransacked his hoards!"


def test_footnote_in_the_middle_of_a_line_and_br(shared):
    raw = text_at(shared, OBADIAH_EN, "text", 0, 11)  # Obadiah 1:12
    assert clean_text(raw) == (
        "How could you gaze with glee On your brother that day, On his day of calamity! "
        "How could you gloat Over the people of Judah On that day of ruin! "
        "How could you loudly jeer On a day of anguish!"
    )


def test_inline_small_joins_the_word_and_footnote_is_dropped(shared):
    raw = text_at(shared, OBADIAH_EN, "text", 0, 20)  # Obadiah 1:21
    assert clean_text(raw) == (
        "For liberators shall march up on Mount Zion to wreak judgment on Mount Esau; "
        "and dominion shall be GOD’s."
    )


def test_jps_micah_with_small_caps_and_trailing_footnote(shared):
    versions = text_at(shared, MICAH, "payload", "versions")
    raw = next(v["text"] for v in versions if v["versionTitle"].startswith("THE JPS"))
    assert clean_text(raw) == (
        "“You have been told, O mortal, what is good, And what GOD requires of you: Only to do justice "
        "And to love goodness, And to walk modestly with your God;"
    )


def test_nbsp_entities_and_parasha_span(shared):
    versions = text_at(shared, MICAH, "payload", "versions")
    raw = next(v["text"] for v in versions if v["versionTitle"] == "Miqra according to the Masorah")
    assert raw.count("&nbsp;") == 9
    assert clean_text(raw) == nfc(
        "הִגִּ֥יד לְךָ֛ אָדָ֖ם מַה־טּ֑וֹב וּמָֽה־יְהֹוָ֞ה דּוֹרֵ֣שׁ מִמְּךָ֗ כִּ֣י אִם־עֲשׂ֤וֹת מִשְׁפָּט֙ "
        "וְאַ֣הֲבַת חֶ֔סֶד וְהַצְנֵ֥עַ לֶ֖כֶת עִם־אֱלֹהֶֽיךָ׃ {ס}"
    )


def test_big_first_letter_stays_in_its_word(shared):
    he = next(v for v in text_at(shared, GENESIS_1_1, "versions") if v["language"] == "he")
    assert he["text"].startswith("<big>")
    assert clean_text(he["text"]) == nfc("בְּרֵאשִׁ֖ית בָּרָ֣א אֱלֹהִ֑ים אֵ֥ת הַשָּׁמַ֖יִם וְאֵ֥ת הָאָֽרֶץ׃")


def test_commentator_anchors_dropped_even_when_malformed(shared):
    raw = text_at(shared, SHULCHAN_ARUKH_1_1, "versions", 0, "text")
    assert '<i data-commentator=Mishnah Berurah"' in raw  # a broken attribute in the real data
    clean = clean_text(raw)
    assert clean.startswith(
        "דין השכמת הבוקר. ובו ט סעיפים: יתגבר כארי לעמוד בבוקר לעבודת בוראו שיהא הוא מעורר השחר: "
        'הגה ועכ"פ לא יאחר זמן התפלה שהצבור מתפללין (טור). הגה שויתי ה\' לנגדי תמיד'
    )
    for leftover in ("<", ">", "data-", "Berurah", "Hetev"):
        assert leftover not in clean


def test_chofetz_chaim_hebrew_footnote_body_removed(shared):
    segment = text_at(
        shared,
        SAMPLE + "Halakhah/Acharonim/Chofetz Chaim/Hebrew/merged.json",
        "text",
        "Introduction to the Laws of the Prohibition of Lashon Hara and Rechilut",
        "Positive Commandments",
        4,
    )
    marker = segment.index('<sup class="footnote-marker">*</sup><i class="footnote">ואף אם יסכים')
    assert segment.endswith("(הגהה)</i>.  ")
    clean = clean_text(segment)
    assert clean == nfc(segment[:marker].rstrip()) + " ."
    assert "יסכים" not in clean and "הגהה" not in clean


def test_escaped_angle_brackets_stay_as_text(shared):
    book = "Halakhah/Shulchan Arukh/Shulchan Arukh, Orach Chayyim/English/merged.json"
    raw = text_at(shared, SAMPLE + book, "text", 74, 2)  # Orach Chayyim 75:3
    assert clean_text(raw) == (
        "One should refrain from hearing a woman's singing voice during the reading of the Shema. "
        "<rema> and even his wife. But the voice that is regular to him is not Erva (lit. nakedness)."
    )


def test_soft_hyphen_removed(shared):
    raw = text_at(shared, SAMPLE + "Tanach/Targum/Onkelos Genesis/English/merged.json", "text", 11, 12)
    assert "\xad" in raw
    assert clean_text(raw) == (
        "Say now, thou art my sister, that it may be well with me through thee, "
        "and my life may be preserved through thy words."
    )


def test_rlm_removed(shared):
    raw = text_at(shared, SAMPLE + "Apocrypha/Megillat Antiochus/Hebrew/merged.json", "text", 10)
    assert raw.endswith("\u200f")
    assert clean_text(raw) == nfc("וַיִּיטַב הַדָּבָר בְעֵינֵי כָל־חֵילוֺ׃")


def test_tabs_and_runs_of_spaces_collapse(shared):
    raw = text_at(shared, SAMPLE + "Musar/Messilat Yesharim/Hebrew/merged.json", "text", 1, 16)
    assert clean_text(raw) == (
        "הזהירות, הזריזות, הנקיות, הפרישות, הטהרה, החסידות, הענווה, יראת החטא והקדושה."
    )


def test_zero_width_joiner_inside_a_word_is_dropped(shared):
    raw = text_at(shared, SAMPLE + "Tanach/Writings/Psalms/Hebrew/merged.json", "text", 29, 10)
    assert "\u200d" in raw
    assert clean_text(raw) == nfc("שְׁמַע־יְהוָ֥ה וְחָנֵּ֑נִי יְ֝הוָה הֱֽיֵה־עֹזֵ֥ר לִֽי׃")


def test_maqaf_kept_in_clean_text():
    assert clean_text("מַה־טּוֹב") == nfc("מַה־טּוֹב")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a<script>var x = '<b>not text</b>';</script>b", "ab"),
        ('<style>.footnote{display:none}</style>text', "text"),
        ("before<!-- a comment -->after", "beforeafter"),
        ("a &amp; b &#x27;c&#x27; &#39;d&#39; &quot;e&quot;", "a & b 'c' 'd' \"e\""),
        ("R&amp;D &amp;amp; more", "R&D &amp; more"),  # unescaped once only
        ("5 < 6 and 7 > 6", "5 < 6 and 7 > 6"),
        ("x <3 y", "x <3 y"),
        ("a<br>b<br/>c<p>d</p>e", "a b c d e"),
        ("bold<b>face</b>d", "boldfaced"),
        ("2<sup>nd</sup> day", "2nd day"),  # a superscript that marks no footnote stays
        ("word<sup>1</sup><i class=\"footnote\">old-style <i>nested</i> note</i> next", "word next"),
        ("word<sup>1</sup> <i class=\"footnote\">note</i>next", "word next"),
        ('<span class="footnote">inline note</span>kept', "kept"),
        ("unterminated <b", "unterminated <b"),
        ('open footnote<sup class="footnote-marker">1</sup><i class="footnote">to the end', "open footnote"),
        ("<a href='/x'>link</a> text", "link text"),
        ("\ufeffBOM\u200b and\u2066 isolate\u2069", "BOM and isolate"),
        ("<b></b>", ""),
        ("", ""),
    ],
)
def test_markup_cases(raw, expected):
    assert clean_text(raw) == expected


def test_nfc_applied_to_plain_text():
    decomposed = "e\u0301te\u0301"
    assert clean_text(decomposed) == "\u00e9t\u00e9"
    assert strip_invisible(" a\t\n b ") == "a b"
