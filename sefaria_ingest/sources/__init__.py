"""Where a book's segments come from: Sefaria's API (`api`) or its bulk export (`export`).

Both sources walk the same index schema and emit identical `Segment` records in book order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..records import Segment
from ..schema import Node, iter_segments

LANGUAGE_FAMILIES = {"he": "hebrew", "en": "english"}


def is_url(base: str) -> bool:
    """An http(s) base is fetched over the network; anything else is a local export directory."""
    return base.startswith(("http://", "https://"))


@dataclass(slots=True)
class FetchOptions:
    """What to fetch for each book."""

    languages: tuple[str, ...] = ("he", "en")
    # "primary": the highest-priority version per language; "all": every version of each language (api only).
    versions: str = "primary"
    # Whole-node requests above this many segments are split into per-section requests up front.
    max_segments_per_request: int = 20000


@dataclass(slots=True)
class VersionPart:
    """The text of one version at one leaf node."""

    lang: str
    version_title: str
    license: str
    leaf: Node
    text: object


@dataclass(slots=True)
class BookFetch:
    """Everything a fetch produced for one book."""

    book: str
    segments: list[Segment]
    stats: dict = field(default_factory=dict)


def build_segments(book: str, categories: list[str], parts: Iterable[VersionPart],
                   languages: tuple[str, ...]) -> list[Segment]:
    """Order parts by language (as configured), version (first seen), then leaf order; emit non-empty segments."""
    leaf_order: dict[int, int] = {}
    grouped: dict[tuple[str, str], list[VersionPart]] = {}
    for part in parts:
        leaf_order.setdefault(id(part.leaf), len(leaf_order))
        grouped.setdefault((part.lang, part.version_title), []).append(part)
    lang_rank = {lang: i for i, lang in enumerate(languages)}
    keys = sorted(grouped, key=lambda k: lang_rank.get(k[0], len(lang_rank)))  # stable: keeps first-seen order
    segments: list[Segment] = []
    for key in keys:
        for part in sorted(grouped[key], key=lambda p: leaf_order[id(p.leaf)]):
            segments.extend(_segments_of(book, categories, part))
    return segments


def _segments_of(book: str, categories: list[str], part: VersionPart) -> Iterator[Segment]:
    for sections, text in iter_segments(part.leaf, part.text):
        if not text.strip():
            continue
        ref = part.leaf.ref(sections)
        yield Segment(
            ref=ref.normal(),
            he_ref=ref.he(),
            book=book,
            categories=list(categories),
            lang=part.lang,
            version_title=part.version_title,
            license=part.license,
            text=text,
        )
