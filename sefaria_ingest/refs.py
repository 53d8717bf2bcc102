"""Sefaria refs: forming and parsing them exactly as Sefaria does.

`Genesis 1:1`, `Genesis 1:1-5`, `Genesis 1:31-2:2`, `Berakhot 2a:3` (Talmud section n: n=1 -> 1a, n=3 -> 2a),
`Rashi on Genesis 1:1:2`, `Pesach Haggadah, Magid, Ha Lachma Anya 2`, and their Hebrew and URL forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

from .hebrew import decode_hebrew_numeral, encode_hebrew_numeral, is_hebrew

# Address types numbered like Talmud folios: two sides ("amudim") per leaf.
TWO_SIDED = frozenset({"Talmud", "Folio"})
SEPARATORS = " .:,"
_SECTION_SPLIT = re.compile(r"[\s.:,]+")
_TALMUD_EN = re.compile(r"^(\d+)([ab])$", re.IGNORECASE)
_HE_AMUD = {"א": "a", "ב": "b", ".": "a", ":": "b"}


def section_to_str(n: int, address_type: str) -> str:
    """English form of 1-based section `n`: Talmud 3 -> "2a", 4 -> "2b"; otherwise str(n)."""
    if n < 1:
        raise ValueError(f"section numbers start at 1, got {n}")
    if address_type in TWO_SIDED:
        return f"{(n + 1) // 2}{'a' if n % 2 else 'b'}"
    return str(n)


def section_to_he(n: int, address_type: str) -> str:
    """Hebrew form: Talmud 3 -> "ב׳ א", 44 -> "כ״ב ב"; otherwise the Hebrew numeral."""
    if n < 1:
        raise ValueError(f"section numbers start at 1, got {n}")
    if address_type in TWO_SIDED:
        return f"{encode_hebrew_numeral((n + 1) // 2)} {'א' if n % 2 else 'ב'}"
    return encode_hebrew_numeral(n)


def str_to_section(s: str, address_type: str) -> int:
    """Inverse of section_to_str / section_to_he for one token ("2a" -> 3, "5" -> 5, "ל״א" -> 31)."""
    token = s.strip()
    if address_type in TWO_SIDED:
        m = _TALMUD_EN.match(token)
        if m:
            daf, amud = int(m.group(1)), m.group(2).lower()
        else:
            parts = token.split()
            if len(parts) == 2 and is_hebrew(parts[0]) and parts[1] in _HE_AMUD:
                daf, amud = decode_hebrew_numeral(parts[0]), _HE_AMUD[parts[1]]
            else:
                raise ValueError(f"not a daf: {s!r} (expected a form like 2a)")
        if daf < 1:
            raise ValueError(f"not a daf: {s!r}")
        return daf * 2 - (1 if amud == "a" else 0)
    if token.isdigit():
        n = int(token)
    elif is_hebrew(token):
        n = decode_hebrew_numeral(token)
    else:
        raise ValueError(f"not a section number: {s!r}")
    if n < 1:
        raise ValueError(f"section numbers start at 1, got {s!r}")
    return n


def _join(parts: list[str]) -> str:
    return ":".join(parts)


@dataclass(frozen=True, slots=True)
class Ref:
    """A ref into one node of one book: its full title, address types and 1-based sections."""

    title: str
    he_title: str
    address_types: tuple[str, ...]
    sections: tuple[int, ...] = ()
    to_sections: tuple[int, ...] = ()

    def __post_init__(self):
        if len(self.sections) > len(self.address_types):
            raise ValueError(f"{self.title}: {len(self.sections)} sections for a depth-{len(self.address_types)} node")
        if self.to_sections and len(self.to_sections) != len(self.sections):
            raise ValueError(f"{self.title}: range ends must have as many sections as starts")

    @property
    def is_range(self) -> bool:
        return bool(self.to_sections) and self.to_sections != self.sections

    @property
    def is_spanning(self) -> bool:
        """A range that crosses a section boundary (e.g. Genesis 1:31-2:2)."""
        return self.is_range and self.sections[:-1] != self.to_sections[:-1]

    def _format(self, title: str, fmt) -> str:
        if not self.sections:
            return title
        start = [fmt(n, t) for n, t in zip(self.sections, self.address_types)]
        text = f"{title} {_join(start)}"
        if self.is_range:
            first_diff = next(i for i, (a, b) in enumerate(zip(self.sections, self.to_sections)) if a != b)
            end = [fmt(n, t) for n, t in zip(self.to_sections, self.address_types)][first_diff:]
            text += "-" + _join(end)
        return text

    def normal(self) -> str:
        """English normal form: "Genesis 1:1-5", "Berakhot 2a:3"."""
        return self._format(self.title, section_to_str)

    def he(self) -> str:
        """Hebrew form as Sefaria's heRef: "בראשית א׳:א׳", "ברכות ב׳ א:ג׳"."""
        return self._format(self.he_title, section_to_he)

    def url(self) -> str:
        """URL form: spaces -> "_", section separators -> "." ("Genesis.1.1", "Pesach_Haggadah,_Kadesh.2")."""
        title = self.title.replace(" ", "_")
        if not self.sections:
            return title
        return title + "." + self.normal()[len(self.title) + 1 :].replace(":", ".")

    def section_ref(self) -> Ref:
        """The enclosing section of a segment ref (the whole node for a depth-1 text; itself above segment level)."""
        if len(self.sections) < len(self.address_types):
            return self
        to = self.to_sections[:-1] if self.to_sections else ()
        return Ref(self.title, self.he_title, self.address_types, self.sections[:-1], to)

    def __str__(self) -> str:
        return self.normal()


def parse_sections(text: str, address_types: Iterable[str]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Parse the sections part of a ref: "1:1-5" -> ((1, 1), (1, 5)); "" -> ((), ())."""
    types = tuple(address_types)
    text = text.strip(SEPARATORS)
    if not text:
        return (), ()
    start_text, dash, end_text = text.partition("-")
    start = _tokens(start_text, types, 0)
    if len(start) > len(types):
        raise ValueError(f"too many sections in {text!r} for a depth-{len(types)} node")
    if not dash:
        return start, ()
    end_tokens = _end_tokens(end_text, types, len(start))
    if not end_tokens or len(end_tokens) > len(start):
        raise ValueError(f"bad range end in {text!r}")
    end = start[: len(start) - len(end_tokens)] + end_tokens
    if end < start:
        raise ValueError(f"range ends before it starts: {text!r}")
    return start, end


def _end_tokens(text: str, types: tuple[str, ...], start_depth: int) -> tuple[int, ...]:
    """A range end names the last levels only ("1:1-5" -> level 2); find the level it starts at."""
    for first in range(start_depth - 1, -1, -1):
        try:
            tokens = _tokens(text, types, first)
        except ValueError:
            continue
        if first + len(tokens) == start_depth:
            return tokens
    raise ValueError(f"bad range end {text!r}")


def _tokens(text: str, types: tuple[str, ...], first_level: int) -> tuple[int, ...]:
    """Section numbers of `text`, whose first token is at `first_level` of the node."""
    raw = [t for t in _SECTION_SPLIT.split(text.strip()) if t]
    tokens: list[str] = []
    for t in raw:
        # Hebrew daf forms are two tokens ("כ״ב א"): glue the amud letter back to its daf.
        level = first_level + len(tokens) - 1
        if (t in _HE_AMUD and tokens and 0 <= level < len(types) and types[level] in TWO_SIDED
                and is_hebrew(tokens[-1]) and " " not in tokens[-1]):
            tokens[-1] = f"{tokens[-1]} {t}"
        else:
            tokens.append(t)
    if first_level < 0 or first_level + len(tokens) > len(types):
        raise ValueError(f"too many sections in {text!r}")
    return tuple(str_to_section(tok, types[first_level + i]) for i, tok in enumerate(tokens))


T = TypeVar("T")


def _norm_title(title: str) -> str:
    return " ".join(title.replace("_", " ").split()).casefold()


class TitleIndex(Generic[T]):
    """Every spelling of every node title -> its node; resolves the title prefix of a ref."""

    def __init__(self) -> None:
        self._titles: dict[str, T] = {}

    def add(self, title: str, target: T) -> None:
        self._titles.setdefault(_norm_title(title), target)

    def __contains__(self, title: str) -> bool:
        return _norm_title(title) in self._titles

    def get(self, title: str) -> T | None:
        return self._titles.get(_norm_title(title))

    def resolve(self, tref: str) -> tuple[T, str]:
        """Longest known title at the start of `tref`, and the rest (the sections text)."""
        text = " ".join(tref.replace("_", " ").split())
        folded = text.casefold()
        best: tuple[T, str] | None = None
        for i in range(len(text), 0, -1):
            if i < len(text) and text[i] not in SEPARATORS and text[i] != "-":
                continue
            for end in (i, i + 1) if i < len(text) and text[i] == "." else (i,):
                target = self._titles.get(folded[:end].rstrip())
                if target is not None:
                    best = (target, text[end:])
                    break
            if best:
                break
        if best is None:
            raise KeyError(tref)
        return best
