"""Hebrew numerals as Sefaria writes them in Hebrew refs (א׳, ל״א, ט״ו, כ״ב)."""

from __future__ import annotations

GERESH = "\u05f3"
GERSHAYIM = "\u05f4"

_ONES = ["", "א", "ב", "ג", "ד", "ה", "ו", "ז", "ח", "ט"]
_TENS = ["", "י", "כ", "ל", "מ", "נ", "ס", "ע", "פ", "צ"]
_HUNDREDS = ["", "ק", "ר", "ש", "ת", "תק", "תר", "תש", "תת", "תתק"]

_VALUES = {
    **{ch: i for i, ch in enumerate(_ONES) if ch},
    **{ch: i * 10 for i, ch in enumerate(_TENS) if ch},
    "ק": 100, "ר": 200, "ש": 300, "ת": 400,
    "ך": 20, "ם": 40, "ן": 50, "ף": 80, "ץ": 90,
}
# Spellings avoided because they spell a divine name or an ill-omened word.
_SPECIAL = {"יה": "טו", "יו": "טז", "רע": "ער", "רעב": "ערב", "רעו": "ערו", "רצח": "רחצ", "שמד": "שדמ"}
_PUNCTUATION = str.maketrans("", "", GERESH + GERSHAYIM + "'\"`")


def _small(n: int) -> str:
    """Letters for 0 < n < 1000 without punctuation."""
    letters = _HUNDREDS[n // 100] + _TENS[n % 100 // 10] + _ONES[n % 10]
    for bad, good in _SPECIAL.items():
        if letters.endswith(bad):
            letters = letters[: -len(bad)] + good
    return letters


def encode_hebrew_numeral(n: int, punctuate: bool = True) -> str:
    """1 -> "א׳", 15 -> "ט״ו", 31 -> "ל״א", 1005 -> "א׳ה׳"."""
    if n <= 0:
        raise ValueError(f"no Hebrew numeral for {n}")
    thousands, rest = divmod(n, 1000)
    parts = []
    if thousands:
        t = _small(thousands)
        parts.append(t + GERESH if punctuate else t)
    if rest:
        letters = _small(rest)
        if punctuate:
            letters = letters + GERESH if len(letters) == 1 else letters[:-1] + GERSHAYIM + letters[-1]
        parts.append(letters)
    return "".join(parts)


def decode_hebrew_numeral(s: str) -> int:
    """Inverse of encode_hebrew_numeral; accepts ASCII quote variants and missing punctuation."""
    text = s.strip()
    total = 0
    # A geresh after the first letters of a longer numeral marks thousands ("א׳ה׳" = 1005).
    if GERESH in text[:-1] or "'" in text[:-1]:
        head, _, tail = text.replace("'", GERESH).partition(GERESH)
        if tail.strip(GERESH + GERSHAYIM):
            total = decode_hebrew_numeral(head) * 1000
            text = tail
    letters = text.translate(_PUNCTUATION).strip()
    if not letters:
        if total:
            return total
        raise ValueError(f"not a Hebrew numeral: {s!r}")
    for ch in letters:
        try:
            total += _VALUES[ch]
        except KeyError:
            raise ValueError(f"not a Hebrew numeral: {s!r}") from None
    return total


def is_hebrew(s: str) -> bool:
    """True when `s` contains a Hebrew letter."""
    return any("\u05d0" <= ch <= "\u05ea" for ch in s)
