"""Pack consecutive segments of one section and one version into chunks that fit the embedding model."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from itertools import groupby
from typing import Iterable, Iterator

from .clean import clean_text
from .errors import IngestError
from .normalize import search_form
from .records import Chunk, Segment
from .tokens import SupportsCount

# Segments cleaned and token-counted per tokenizer call; a section is never cut across batches.
BATCH_SEGMENTS = 4096

_SENTENCE_END = re.compile(r"(?<=[.!?;:\u05C3\u05C0\u0589\u061F\u3002])\s+")


def section_of(ref: str, book: str | None = None) -> str:
    """The section a segment ref belongs to: the ref minus its last address component.

    `Genesis 1:3` -> `Genesis 1`, `Berakhot 2a:3` -> `Berakhot 2a`, `Hallel 3` -> `Hallel`.
    """
    title, _, address = ref.rpartition(" ")
    if not title or not any(ch.isdigit() for ch in address):
        raise IngestError(book, "segment ref has no section address", ref=ref)
    head, colon, _ = address.rpartition(":")
    return f"{title} {head}" if colon else title


def _last_component(ref: str) -> str:
    return ref.rpartition(" ")[2].rpartition(":")[2]


def range_ref(refs: list[str]) -> str:
    """`Genesis 1:1-3` for refs of one section, the ref itself for one segment."""
    if len(refs) == 1:
        return refs[0]
    return f"{refs[0]}-{_last_component(refs[-1])}"


def range_he_ref(first: str, last: str) -> str:
    """The Hebrew range `בראשית א׳:א׳-ג׳` from the first and last segments' Hebrew refs ("" if one is unknown)."""
    if not first or not last:
        return ""
    if first == last:
        return first
    return f"{first}-{_last_component(last)}"


def chunk_id(book: str, lang: str, version_title: str, refs: list[str], text: str, part: int | None = None) -> str:
    """16 hex digits of a hash over version, refs and text; a split segment's pieces get a `-p<n>` suffix."""
    key = "\x1f".join((book, lang, version_title, "\x1e".join(refs), "" if part is None else str(part), text))
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()
    return digest if part is None else f"{digest}-p{part}"


def _is_additive(counter: SupportsCount) -> bool:
    # Only a counter that says so: then count(a + " " + b) == count(a) + count(b) and sums need no re-count.
    return bool(getattr(counter, "additive", False))


@dataclass(slots=True)
class _Cleaned:
    """One segment with its clean text split into sentences and their token counts."""

    segment: Segment
    text: str
    sentences: list[str]
    counts: list[int]
    n_tokens: int


@dataclass(slots=True)
class _Candidate:
    """A chunk before its record is built: its segments, and the piece when one segment is split."""

    items: list[_Cleaned]
    n_tokens: int | None  # None: to be measured
    piece: str | None = None
    part: int | None = None
    parts: int | None = None
    overlap: int = 0

    @property
    def text(self) -> str:
        if self.piece is not None:
            return self.piece
        return " ".join(item.text for item in self.items if item.text)


def _group_key(segment: Segment) -> tuple[str, str, str, str, str]:
    return (
        segment.book,
        segment.lang,
        segment.version_title,
        segment.license,
        section_of(segment.ref, segment.book),
    )


def _pack(items: list[_Cleaned], max_tokens: int, overlap: int, additive: bool) -> Iterator[_Candidate]:
    """Greedy runs of one section's segments by summed counts; an oversized segment comes out alone."""
    run: list[_Cleaned] = []
    run_tokens = 0
    run_overlap = 0

    def emit() -> _Candidate:
        exact = additive or len(run) == 1
        return _Candidate(list(run), run_tokens if exact else None, overlap=run_overlap)

    for item in items:
        if item.n_tokens > max_tokens:
            if run:
                yield emit()
            run, run_tokens, run_overlap = [], 0, 0
            yield _Candidate([item], item.n_tokens)
            continue
        if run and run_tokens + item.n_tokens > max_tokens:
            yield emit()
            kept = run[len(run) - overlap :] if overlap else []
            while kept and sum(k.n_tokens for k in kept) + item.n_tokens > max_tokens:
                kept.pop(0)
            run, run_tokens, run_overlap = kept, sum(k.n_tokens for k in kept), len(kept)
        run.append(item)
        run_tokens += item.n_tokens
    if run:
        yield emit()


def _cut_word(word: str, counter: SupportsCount, max_tokens: int) -> list[tuple[str, int]]:
    """Cut one over-long whitespace-free string into counted pieces that fit, at character boundaries."""
    pieces: list[tuple[str, int]] = []
    rest = word
    n = counter.count([rest])[0]
    while n > max_tokens:
        cut = max(1, len(rest) * max_tokens // n)
        while True:
            # A letter keeps its points: a piece never starts on a combining mark.
            while 0 < cut < len(rest) and unicodedata.combining(rest[cut]):
                cut -= 1
            if cut == 0:
                cut = 1
                while cut < len(rest) and unicodedata.combining(rest[cut]):
                    cut += 1
            head_n = counter.count([rest[:cut]])[0]
            if head_n <= max_tokens:
                break
            if not any(unicodedata.combining(ch) == 0 for ch in rest[1:cut]):
                raise ValueError(f"max_tokens={max_tokens} is too small for the single character {rest[0]!r}")
            cut = max(1, cut * 3 // 4)
        pieces.append((rest[:cut], head_n))
        rest = rest[cut:]
        n = counter.count([rest])[0]
    pieces.append((rest, n))
    return pieces


def _split_sentences(
    sentences: list[str], counts: list[int], counter: SupportsCount, max_tokens: int
) -> list[tuple[str, int]]:
    """Pack counted sentences into pieces that fit; a sentence over the limit is packed word by word."""
    words = [w for s, n in zip(sentences, counts) if n > max_tokens for w in s.split()]
    word_counts = iter(counter.count(words))
    # Units are (separator before, text, count); an empty separator marks a cut inside a word.
    units: list[tuple[str, str, int]] = []
    for sentence, n in zip(sentences, counts):
        if n <= max_tokens:
            units.append((" ", sentence, n))
            continue
        for word in sentence.split():
            word_n = next(word_counts)
            if word_n <= max_tokens:
                units.append((" ", word, word_n))
            else:
                cuts = _cut_word(word, counter, max_tokens)
                units.extend(("" if k else " ", piece, piece_n) for k, (piece, piece_n) in enumerate(cuts))
    groups: list[list[int]] = []
    total = 0
    for i, (_, _, n) in enumerate(units):
        if not groups or total + n > max_tokens:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += n
    if _is_additive(counter):
        return [(_join_units(units, g), sum(units[i][2] for i in g)) for g in groups]
    return _fit_units(units, groups, counter, max_tokens)


def _join_units(units: list[tuple[str, str, int]], indices: list[int]) -> str:
    return units[indices[0]][1] + "".join(units[i][0] + units[i][1] for i in indices[1:])


def _fit_units(
    units: list[tuple[str, str, int]], groups: list[list[int]], counter: SupportsCount, max_tokens: int
) -> list[tuple[str, int]]:
    """Measure each packed piece; halve any that a non-additive tokenizer puts over the limit."""
    texts = [_join_units(units, g) for g in groups]
    pieces: list[tuple[str, int]] = []
    for g, text, n in zip(groups, texts, counter.count(texts)):
        if n <= max_tokens or len(g) == 1:
            # One unit was measured alone and fits, so it counts the same here.
            pieces.append((text, n))
        else:
            half = len(g) // 2
            pieces.extend(_fit_units(units, [g[:half], g[half:]], counter, max_tokens))
    return pieces


def split_text(text: str, counter: SupportsCount, max_tokens: int) -> list[tuple[str, int]]:
    """Pieces of `text` with their token counts, each within `max_tokens`: cut at sentence ends, then words.

    For single-spaced text (as `clean_text` gives) joining the pieces with spaces gives `text` back,
    except where one word alone was over the limit and had to be cut inside it.
    """
    sentences = _SENTENCE_END.split(text)
    return _split_sentences(sentences, counter.count(sentences), counter, max_tokens)


def _fit(candidates: list[_Candidate], counter: SupportsCount, max_tokens: int) -> Iterator[_Candidate]:
    """Measure what is unmeasured in one batch; halve runs over the limit and cut over-long segments, in order."""
    unmeasured = [c for c in candidates if c.n_tokens is None]
    for c, n in zip(unmeasured, counter.count([c.text for c in unmeasured])):
        c.n_tokens = n
    for c in candidates:
        if c.n_tokens <= max_tokens:
            yield c
        elif len(c.items) > 1:
            # The summed counts fit but the joined text does not: this tokenizer is not additive.
            half = len(c.items) // 2
            halves = [_Candidate(c.items[:half], None, overlap=min(c.overlap, half)), _Candidate(c.items[half:], None)]
            yield from _fit(halves, counter, max_tokens)
        else:
            item = c.items[0]
            pieces = _split_sentences(item.sentences, item.counts, counter, max_tokens)
            for k, (text, n) in enumerate(pieces):
                yield _Candidate([item], n, piece=text, part=k, parts=len(pieces))


def _record(c: _Candidate) -> Chunk:
    first, last = c.items[0].segment, c.items[-1].segment
    refs = [item.segment.ref for item in c.items]
    text = c.text
    extra: dict = {}
    if c.part is not None:
        extra["part"], extra["parts"] = c.part, c.parts
    if c.overlap:
        extra["overlap"] = c.overlap  # leading segments repeated from the previous chunk
    return Chunk(
        id=chunk_id(first.book, first.lang, first.version_title, refs, text, c.part),
        ref=range_ref(refs),
        he_ref=range_he_ref(first.he_ref, last.he_ref),
        refs=refs,
        book=first.book,
        categories=list(first.categories),
        lang=first.lang,
        version_title=first.version_title,
        license=first.license,
        text=text,
        search_text=search_form(text),
        original="\n".join(item.segment.text for item in c.items),
        n_tokens=c.n_tokens,
        extra=extra,
    )


def _clean_and_count(segments: list[Segment], counter: SupportsCount) -> list[_Cleaned]:
    """Clean every segment and count all their sentences in one tokenizer call."""
    texts = [clean_text(s.text) for s in segments]
    sentences = [_SENTENCE_END.split(t) if t else [] for t in texts]
    flat_counts = counter.count([s for ss in sentences for s in ss])
    items: list[_Cleaned] = []
    start = 0
    for segment, text, ss in zip(segments, texts, sentences):
        counts = flat_counts[start : start + len(ss)]
        start += len(ss)
        items.append(_Cleaned(segment, text, ss, counts, sum(counts)))
    if not _is_additive(counter):
        # Sentence sums are only estimates here: measure whole segments.
        for item, n in zip(items, counter.count(texts)):
            item.n_tokens = n
    return items


def _chunk_block(
    groups: list[list[Segment]], counter: SupportsCount, max_tokens: int, overlap: int
) -> Iterator[Chunk]:
    items = _clean_and_count([s for group in groups for s in group], counter)
    additive = _is_additive(counter)
    candidates: list[_Candidate] = []
    start = 0
    for group in groups:
        candidates.extend(_pack(items[start : start + len(group)], max_tokens, overlap, additive))
        start += len(group)
    for c in _fit(candidates, counter, max_tokens):
        yield _record(c)


def chunk_segments(
    segments: Iterable[Segment],
    counter: SupportsCount,
    max_tokens: int,
    overlap_segments: int = 0,
    batch_segments: int = BATCH_SEGMENTS,
) -> Iterator[Chunk]:
    """Chunks of consecutive segments (in book order) of one section, version and licence, within `max_tokens`.

    Every segment is covered; one longer than `max_tokens` becomes `-p<n>` pieces of its own.
    `overlap_segments` repeats up to that many trailing segments of a chunk at the start of the next.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, not {max_tokens}")
    if overlap_segments < 0:
        raise ValueError(f"overlap_segments must be >= 0, not {overlap_segments}")
    block: list[list[Segment]] = []
    size = 0
    for _, group in groupby(segments, key=_group_key):
        block.append(list(group))
        size += len(block[-1])
        if size >= batch_segments:
            yield from _chunk_block(block, counter, max_tokens, overlap_segments)
            block, size = [], 0
    if block:
        yield from _chunk_block(block, counter, max_tokens, overlap_segments)
