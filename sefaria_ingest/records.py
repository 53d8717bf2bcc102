"""Plain records that cross file boundaries between stages, and their JSONL form."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, TypeVar

import orjson

from .atomic import atomic_write


@dataclass(slots=True)
class Segment:
    """One non-empty segment of one version of a book, as fetched (HTML kept)."""

    ref: str
    he_ref: str
    book: str
    categories: list[str]
    lang: str  # "en" | "he"
    version_title: str
    license: str
    text: str


@dataclass(slots=True)
class Chunk:
    """A run of consecutive segments of one section and one version, ready to embed and index."""

    id: str
    ref: str  # the range it covers, e.g. "Genesis 1:1-3"
    he_ref: str
    refs: list[str]  # every segment ref it covers, in order
    book: str
    categories: list[str]
    lang: str
    version_title: str
    license: str
    text: str  # cleaned text
    search_text: str  # normalised form for full-text matching (Hebrew without niqqud, folded finals)
    original: str  # the segments' text as received, joined by "\n"
    n_tokens: int = 0
    extra: dict = field(default_factory=dict)


T = TypeVar("T")


def dumps(record) -> bytes:
    """One record as a JSONL line (orjson serialises dataclasses natively)."""
    return orjson.dumps(record) + b"\n"


def write_jsonl(path: str | os.PathLike, records: Iterable) -> int:
    """Write records atomically as JSONL; returns how many were written."""
    n = 0
    with atomic_write(path, "wb") as fh:
        for record in records:
            fh.write(dumps(record))
            n += 1
    return n


def read_jsonl(path: str | os.PathLike, cls: type[T]) -> Iterator[T]:
    """Read JSONL records back into `cls`."""
    with open(path, "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield cls(**orjson.loads(line))
            except (orjson.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}:{line_no}: not a valid {cls.__name__} record: {exc}") from exc
