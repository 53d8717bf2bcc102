"""The search form of a text: one spelling for Hebrew with or without niqqud, for indexing and queries alike."""

from __future__ import annotations

import re
import unicodedata


def _build_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    # Cantillation, vowels and dots: the same word is written with or without them.
    for cp in (
        *range(0x0591, 0x05BE),  # cantillation U+0591-U+05AF, points U+05B0-U+05BD (meteg included)
        0x05BF,  # rafe
        0x05C1, 0x05C2,  # shin / sin dot
        0x05C4, 0x05C5,  # upper / lower dot
        0x05C7,  # qamats qatan
        0xFB1E,  # varika
    ):
        table[cp] = None
    # Punctuation that separates words: maqaf joins words a query would type apart.
    for cp in (0x05BE, 0x05C0, 0x05C3, 0x05C6):  # maqaf, paseq, sof pasuq, nun hafukha
        table[cp] = " "
    for final, plain in zip("ךםןףץ", "כמנפצ"):
        table[ord(final)] = plain
    # One geresh and one gershayim, however they were typed.
    for ch in "\u05F3\u2018\u2019\u201A\u201B\u2032\u02BC\u0060":
        table[ord(ch)] = "'"
    for ch in "\u05F4\u201C\u201D\u201E\u201F\u2033":
        table[ord(ch)] = '"'
    # Invisible marks a pasted query may carry.
    for cp in (
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2065),
        *range(0x2066, 0x206A),
        0x00AD, 0xFEFF, 0x061C,
    ):
        table[cp] = None
    for cp in range(0x20):
        table[cp] = " "
    table[0x7F] = None
    return table


_TABLE = _build_table()


def search_form(text: str) -> str:
    """Fold `text` for matching: no Hebrew points, plain final letters, unified quotes, casefolded, single spaces.

    Idempotent, so indexed text and queries can both be passed through it.
    """
    if text.isascii():
        return " ".join(text.translate(_TABLE).replace("''", '"').casefold().split())
    # NFKD first so precomposed presentation forms (e.g. U+FB2E) expose their points to the table.
    folded = unicodedata.normalize("NFKD", text).translate(_TABLE).replace("''", '"').casefold()
    return " ".join(unicodedata.normalize("NFC", folded).split())


# Gershayim or geresh between Hebrew letters marks an abbreviation (רש"י): one word, with or without the mark.
_ABBREVIATION = re.compile(r"(?<=[\u05d0-\u05ea])[\"'](?=[\u05d0-\u05ea])")
# A quoted phrase starts and ends at a word boundary, so a gershayim typed as '"' inside a word (רש"י) is no quote.
QUOTED_PHRASE = re.compile(r'(?:^|(?<=\s))"([^"]+)"(?=\s|$)')


def index_form(search_text: str) -> str:
    """The search form as every full-text backend indexes and queries it: Hebrew abbreviations joined into one word."""
    return _ABBREVIATION.sub("", search_text)
