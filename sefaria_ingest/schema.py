"""A book's index schema as a tree of nodes, and walking its text arrays into addressed segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from .errors import BadSchema
from .refs import Ref


def primary_title(node: dict, lang: str) -> str:
    """The node's primary title in `lang` (falls back to `title`/`heTitle`, then any title)."""
    titles = node.get("titles") or []
    for t in titles:
        if t.get("lang") == lang and t.get("primary"):
            return t["text"]
    direct = node.get("title" if lang == "en" else "heTitle")
    if direct:
        return direct
    for t in titles:
        if t.get("lang") == lang:
            return t["text"]
    return ""


@dataclass(slots=True)
class Node:
    """One schema node; leaves (JaggedArrayNodes) hold text, inner SchemaNodes hold nodes."""

    key: str
    book: str
    en_title: str
    he_title: str
    titles: list[dict]
    text_path: tuple[str, ...]
    children: list["Node"] = field(default_factory=list)
    default: bool = False
    depth: int = 0
    address_types: tuple[str, ...] = ()
    section_names: tuple[str, ...] = ()
    he_section_names: tuple[str, ...] = ()
    offsets: dict | None = None
    lengths: list | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def leaves(self) -> list["Node"]:
        """Text-bearing nodes in schema order."""
        if self.is_leaf:
            return [self]
        return [leaf for child in self.children for leaf in child.leaves()]

    def walk(self) -> Iterator["Node"]:
        """This node and every node below it, in schema order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def ref(self, sections: tuple[int, ...] = (), to_sections: tuple[int, ...] = ()) -> Ref:
        return Ref(self.en_title, self.he_title, self.address_types, tuple(sections), tuple(to_sections))


def parse_index(index: dict, *, book: str) -> Node:
    """Build the node tree from a modern (v2 or raw) index record; raises BadSchema on shapes we cannot walk."""
    if not isinstance(index, dict):
        raise BadSchema(book, f"index is a {type(index).__name__}, expected an object")
    schema = index.get("schema")
    if not isinstance(schema, dict):
        raise BadSchema(book, "index has no `schema` object")
    en = index.get("title") or primary_title(schema, "en") or book
    he = index.get("heTitle") or primary_title(schema, "he") or en
    return _node(schema, en, he, (), book, root=True)


def _node(raw: dict, en: str, he: str, path: tuple[str, ...], book: str, root: bool = False) -> Node:
    children_raw = raw.get("nodes")
    node = Node(
        key=str(raw.get("key", "")),
        book=book,
        en_title=en,
        he_title=he,
        titles=list(raw.get("titles") or []),
        text_path=path,
        default=bool(raw.get("default")),
        raw=raw,
    )
    if children_raw:
        if not isinstance(children_raw, list):
            raise BadSchema(book, f"node {en!r} has `nodes` that is not a list")
        for child in children_raw:
            if not isinstance(child, dict):
                raise BadSchema(book, f"node {en!r} has a child that is not an object")
            if child.get("default"):
                c_en, c_he, key = en, he, ""
            else:
                own_en = primary_title(child, "en")
                if not own_en:
                    raise BadSchema(book, f"a child of {en!r} has no English title")
                c_en = f"{en}, {own_en}"
                c_he = f"{he}, {primary_title(child, 'he') or own_en}"
                key = own_en
            node.children.append(_node(child, c_en, c_he, path + (key,), book))
        return node
    address_types = tuple(raw.get("addressTypes") or ())
    section_names = tuple(raw.get("sectionNames") or ())
    depth = raw.get("depth") or len(address_types) or len(section_names)
    if not isinstance(depth, int) or depth < 1:
        raise BadSchema(book, f"node {en!r} has no depth, addressTypes or sectionNames")
    if not address_types:
        address_types = ("Integer",) * depth
    if len(address_types) != depth:
        raise BadSchema(book, f"node {en!r}: depth {depth} but {len(address_types)} addressTypes")
    node.depth = depth
    node.address_types = address_types
    node.section_names = section_names or tuple(["Section"] * depth)
    node.he_section_names = tuple(raw.get("heSectionNames") or ())
    offsets = raw.get("index_offsets_by_depth")
    node.offsets = offsets if isinstance(offsets, dict) and offsets else None
    node.lengths = raw.get("lengths")
    return node


def text_at(leaf: Node, export_text) -> list | str | None:
    """The part of an export-style `text` (dict keyed by node title, "" for default nodes) that `leaf` holds."""
    current = export_text
    for key in leaf.text_path:
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return current


def _offset(offsets: dict | None, level: int, parents: tuple[int, ...]) -> int:
    """index_offsets_by_depth: key str(level+1) holds a scalar (top level) or arrays indexed by parent positions."""
    if not offsets:
        return 0
    value = offsets.get(str(level + 1))
    for i in parents:
        if not isinstance(value, list) or i >= len(value):
            return 0
        value = value[i]
    return value if isinstance(value, int) else 0


def iter_segments(leaf: Node, jagged) -> Iterator[tuple[tuple[int, ...], str]]:
    """Every string of `jagged` with its 1-based sections, in order; empty strings included.

    A string found above segment level is that section's first segment; lists nested deeper than the
    node's depth are joined into one segment, so no text is ever dropped. Numbers and nulls (old exports'
    placeholders for missing segments) count as empty.
    """
    yield from _walk(leaf, jagged, (), ())


def _walk(leaf: Node, value, sections: tuple[int, ...], positions: tuple[int, ...]):
    level = len(sections)
    if value is None or isinstance(value, (int, float, bool)):
        return  # old exports hold 0 or null where a segment is missing
    if isinstance(value, str):
        if level == 0:
            sections = (1,)
        yield sections + (1,) * (leaf.depth - len(sections)), value
        return
    if not isinstance(value, list):
        where = leaf.ref(sections).normal() if sections else leaf.en_title
        raise BadSchema(leaf.book, f"unexpected {type(value).__name__} in the text", ref=where)
    if level == leaf.depth:
        yield sections, " ".join(s for s in _flatten(value) if s.strip())
        return
    base = _offset(leaf.offsets, level, positions)
    for i, item in enumerate(value):
        yield from _walk(leaf, item, sections + (i + 1 + base,), positions + (i,))


def _flatten(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item)
