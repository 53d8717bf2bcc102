"""Jagged text arrays: cutting out a ref's part the way Sefaria's `_trim_text` does, and measuring shapes."""

from __future__ import annotations

from ..export_tree import has_text, trimmed_len


def _child(value, i: int, below: int):
    """Element i (0-based) of a list, or an empty placeholder `below` levels deep when it is missing."""
    if isinstance(value, list) and 0 <= i < len(value):
        return value[i]
    return "" if below == 0 else []


def extract(jagged, depth: int, sections: tuple[int, ...], to_sections: tuple[int, ...] = ()):
    """The part of a node's text a ref names, shaped like the API returns it.

    Segment ref -> str; section or in-section range -> list; a range crossing sections -> list of lists
    (first and last trimmed); no sections -> the whole array.
    """
    if jagged is None:
        jagged = []
    if not sections:
        return jagged
    to = to_sections or sections
    split = next((i for i, (a, b) in enumerate(zip(sections, to)) if a != b), len(sections))
    value = jagged
    for level in range(split):
        value = _child(value, sections[level] - 1, depth - level - 1)
    if split == len(sections):
        return value
    below = depth - split - 1
    picked = [_child(value, i, below) for i in range(sections[split] - 1, to[split])]
    if len(sections) > split + 1 and picked:
        picked[0] = _tail(picked[0], sections[split + 1:], below - 1)
        picked[-1] = _head(picked[-1], to[split + 1:], below - 1)
    return picked


def _tail(value, starts: tuple[int, ...], below: int):
    """`value` from position starts[0] on, recursively trimming its first element."""
    if not isinstance(value, list):
        return value
    out = list(value[starts[0] - 1:])
    if len(starts) > 1 and out:
        out[0] = _tail(out[0], starts[1:], below - 1)
    return out


def _head(value, ends: tuple[int, ...], below: int):
    """`value` up to position ends[0], recursively trimming its last element."""
    if not isinstance(value, list):
        return value
    out = list(value[: ends[0]])
    while len(out) < ends[0]:
        out.append("" if below <= 0 else [])
    if len(ends) > 1 and out:
        out[-1] = _head(out[-1], ends[1:], below - 1)
    return out


def shape(arrays: list, depth: int):
    """Segments per section over several versions of a node: int (depth 1), list (2), nested lists (3+)."""
    lists = [a for a in arrays if isinstance(a, list)]
    top = max((trimmed_len(a) for a in lists), default=0)
    if depth <= 1:
        return top
    return [shape([a[i] for a in lists if i < len(a)], depth - 1) for i in range(top)]


def text_prefixes(jagged, depth: int) -> set[tuple[int, ...]]:
    """1-based section prefixes (length depth-1) of the sections that hold text; {()} for a depth-1 node with text."""
    found: set[tuple[int, ...]] = set()

    def walk(value, prefix: tuple[int, ...]):
        if len(prefix) == depth - 1:
            if has_text(value):
                found.add(prefix)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, prefix + (i + 1,))

    walk(jagged, ())
    return found


def map_strings(value, fn):
    """`value` with fn applied to every string, structure kept."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    return value
