"""Shared by the fetch benchmarks: the books, where the old designs started, and segment accounting.

A segment is one non-empty string of one version at one segment ref; count.py (in the sample) says how many
each book has, so `lost = expected - unique obtained` and `duplicated = obtained - unique obtained`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from sefaria_ingest.export_tree import ExportTree

# (lang, versionTitle, segment ref): one version's text at one segment.
Key = tuple[str, str, str]
# What the old designs asked for: both language families, each its primary version.
OLD_VERSION_PARAMS = [("version", "hebrew"), ("version", "english")]


@dataclass(frozen=True, slots=True)
class BookSpec:
    """A book to fetch: its title and categories (the old designs chose the start ref from them)."""

    title: str
    categories: tuple[str, ...]


@dataclass(slots=True)
class BookOutcome:
    """What one design got for one book; `error` says why it stopped early (what it got still counts)."""

    book: str
    keys: list[Key] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class Tally:
    """Segments expected (count.py) against segments obtained, for one book or a whole run."""

    expected: int = 0
    obtained: int = 0
    unique: int = 0

    @property
    def lost(self) -> int:
        return self.expected - self.unique

    @property
    def duplicated(self) -> int:
        return self.obtained - self.unique

    def add(self, other: Tally) -> None:
        self.expected += other.expected
        self.obtained += other.obtained
        self.unique += other.unique


def book_specs(sample_dir: str | os.PathLike, titles: Iterable[str]) -> list[BookSpec]:
    """BookSpecs for `titles` from the export tree; an unknown title raises UnknownBook."""
    tree = ExportTree(sample_dir)
    specs = []
    for title in titles:
        resolved = tree.resolve(title)
        specs.append(BookSpec(resolved, tuple(tree.index(resolved, with_lengths=False).get("categories") or ())))
    return specs


def start_ref(book: BookSpec) -> str:
    """Where the old designs began a book: Talmud at daf 2a, everything else at `<Book> 1:1`."""
    if book.categories[:1] == ("Talmud",):
        return f"{book.title} 2a"
    return f"{book.title} 1:1"


def expected_segments(sample_dir: str | os.PathLike) -> dict[str, int]:
    """Non-empty segments per book title, all languages together, as the sample's own count.py counts them."""
    path = Path(sample_dir) / "count.py"
    spec = importlib.util.spec_from_file_location("sefaria_sample_count", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no count.py at {path}")
    count = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(count)
    totals: dict[str, int] = {}
    for book_dir, by_lang in count.scan(str(sample_dir)).items():
        title = os.path.basename(book_dir)
        totals[title] = totals.get(title, 0) + sum(st["nonempty"] for st in by_lang.values())
    return totals


def is_segment_answer(body: dict) -> bool:
    """A v3 answer for one segment (its text a string), where v1's default context=1 gave the whole section."""
    versions = body.get("versions") or []
    return bool(versions) and all(isinstance(v.get("text"), str) for v in versions)


def segment_keys(body: dict) -> Iterator[Key]:
    """Keys of the non-empty segments in a v3 texts answer, numbered from its `ref` the way the old code did."""
    base = body["ref"]
    for version in body.get("versions") or []:
        lang = version.get("language") or "?"
        title = version.get("versionTitle") or "?"
        yield from _walk(lang, title, base, bool(body.get("sections")), version.get("text"))


def _walk(lang: str, title: str, ref: str, has_sections: bool, text) -> Iterator[Key]:
    if isinstance(text, str):
        if text.strip():
            yield lang, title, ref
    elif isinstance(text, list):
        sep = ":" if has_sections else " "
        for i, item in enumerate(text, start=1):
            yield from _walk(lang, title, f"{ref}{sep}{i}", True, item)


def tally(outcomes: Iterable[BookOutcome], expected: dict[str, int]) -> tuple[dict[str, Tally], Tally]:
    """Per-book tallies and their total; a book count.py does not know expects 0 segments."""
    per_book: dict[str, Tally] = {}
    total = Tally()
    for outcome in outcomes:
        t = Tally(expected.get(outcome.book, 0), len(outcome.keys), len(set(outcome.keys)))
        per_book[outcome.book] = t
        total.add(t)
    return per_book, total
