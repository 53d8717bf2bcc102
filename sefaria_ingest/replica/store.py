"""The replica's library: books of an export tree, and refs resolved against their schema nodes."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from ..export_tree import ExportTree, VersionText
from ..refs import SEPARATORS, Ref, TitleIndex, parse_sections, section_to_str
from ..schema import Node, parse_index, text_at
from . import jagged

COMPLEX_BOOK_LEVEL = (
    "You passed '{ref}', please pass a more specific ref for this book, and try again. '{ref}' is a 'complex' "
    "book-level ref. We only support book-level refs in cases of texts with a 'simple' structure. To learn more "
    "about the structure of a text on Sefaria, see: https://developers.sefaria.org/docs/the-structure-of-a-simple-text"
)
_CUTS = SEPARATORS + "-"


class RefError(Exception):
    """A request the API answers with `{"error": message}` and `status`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Book:
    """One book, loaded: v2 index, node tree, versions, and the sections that hold text (book order)."""

    title: str
    index: dict
    root: Node
    versions: list[VersionText]
    leaves: list[Node] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)  # id(leaf) -> its place in `leaves`
    sections: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # (leaf place, section prefix)

    @property
    def is_complex(self) -> bool:
        return bool(self.root.children)

    def node_at(self, path: tuple[int, ...]) -> Node:
        node = self.root
        for i in path:
            node = node.children[i]
        return node

    def text(self, leaf: Node, version: VersionText):
        return text_at(leaf, version.text)

    def section_ref(self, key: tuple[int, tuple[int, ...]]) -> Ref:
        leaf = self.leaves[key[0]]
        return leaf.ref(key[1])


@dataclass(slots=True)
class Located:
    """A parsed ref: its book, node (a leaf, or a SchemaNode for complex refs) and sections."""

    book: Book
    node: Node
    ref: Ref
    book_level: bool  # names the whole book (or the book's default node)

    @property
    def sections(self) -> tuple[int, ...]:
        return self.ref.sections

    @property
    def to_sections(self) -> tuple[int, ...]:
        return self.ref.to_sections or self.ref.sections


class Library:
    """All books of an export tree, loaded on first use; every node title (any spelling) resolves a ref."""

    def __init__(self, tree: ExportTree):
        self.tree = tree
        self._books: dict[str, Book] = {}
        self._titles: TitleIndex[tuple[str, tuple[int, ...]]] = TitleIndex()
        for title in tree.titles():
            index = tree.index(title, with_lengths=False)
            root = parse_index(index, book=title)
            spellings = [title, index.get("heTitle", ""), *index.get("titleVariants", ()),
                         *index.get("heTitleVariants", ()), *(t["text"] for t in root.titles)]
            for spelling in spellings:
                if spelling:
                    self._titles.add(spelling, (title, ()))
            self._add_node_titles(title, root, ())

    def _add_node_titles(self, book: str, node: Node, path: tuple[int, ...]) -> None:
        for i, child in enumerate(node.children):
            child_path = path + (i,)
            if not child.default:
                self._titles.add(child.en_title, (book, child_path))
                self._titles.add(child.he_title, (book, child_path))
                for t in child.titles:
                    parent = node.en_title if t.get("lang") == "en" else node.he_title
                    self._titles.add(f"{parent}, {t['text']}", (book, child_path))
            self._add_node_titles(book, child, child_path)

    def titles(self) -> list[str]:
        return self.tree.titles()

    def node(self, name: str) -> tuple[Book, Node] | None:
        """The book and node with exactly this title (any spelling), or None."""
        target = self._titles.get(name)
        if target is None:
            return None
        book = self.book(target[0])
        return book, book.node_at(target[1])

    def book(self, title: str) -> Book:
        """The loaded book (texts read on first use)."""
        title = self.tree.resolve(title)
        book = self._books.get(title)
        if book is None:
            book = self._load(title)
            self._books[title] = book
        return book

    def preload(self) -> None:
        for title in self.titles():
            self.book(title)

    def _load(self, title: str) -> Book:
        index = self.tree.index(title)
        root = parse_index(index, book=title)
        book = Book(title, index, root, self.tree.versions(title))
        book.leaves = root.leaves()
        book.positions = {id(leaf): i for i, leaf in enumerate(book.leaves)}
        keys: set[tuple[int, tuple[int, ...]]] = set()
        for i, leaf in enumerate(book.leaves):
            for version in book.versions:
                keys.update((i, p) for p in jagged.text_prefixes(book.text(leaf, version), leaf.depth))
        book.sections = sorted(keys)
        return book

    # --- refs ------------------------------------------------------------------------------------

    def locate(self, tref: str) -> Located:
        """Parse a ref as the v3 API does; RefError(404) when no title matches or a section is past the end."""
        text = tref.replace("_", " ")
        try:
            (title, path), rest = self._titles.resolve(text)
        except KeyError:
            raise RefError(404, f"Could not find title in reference: {text}") from None
        book = self.book(title)
        node = book.node_at(path)
        if node.children:
            default = next((c for c in node.children if c.default), None)
            if default is None:
                if rest.strip(_CUTS):
                    raise RefError(404, f"Could not find title in reference: {text}")
                return Located(book, node, node.ref(), path == ())
            node = default
        sections, to_sections = _parse_partial(rest, node.address_types)
        lengths = node.lengths or []
        top = lengths[0] if lengths else 0
        if top and sections and max(sections[0], (to_sections or sections)[0]) > top:
            name = node.section_names[0] if node.section_names else "Section"
            raise RefError(404, f"{node.en_title} ends at {name} {section_to_str(top, node.address_types[0])}.")
        return Located(book, node, node.ref(sections, to_sections), path == () and not sections)

    def has_text(self, loc: Located, version: VersionText) -> bool:
        """Whether `version` has any text at the ref."""
        return jagged.has_text(self.text(loc, version))

    def text(self, loc: Located, version: VersionText):
        """The version's text at the ref, shaped like the API's `text` field."""
        if loc.node.children:
            return [loc.book.text(leaf, version) for leaf in loc.node.leaves()]
        return jagged.extract(loc.book.text(loc.node, version), loc.node.depth, loc.sections, loc.to_sections)

    # --- navigation ------------------------------------------------------------------------------

    def _bounds(self, loc: Located) -> tuple[tuple, tuple]:
        """Sort keys bracketing every section the ref covers."""
        place = loc.book.positions[id(loc.node)]
        d = loc.node.depth
        start, end = loc.sections[: d - 1], loc.to_sections[: d - 1]
        lo = (place, start)
        hi = (place, end) if len(end) == d - 1 else (place, end + (math.inf,))
        return lo, hi

    def next_prev(self, loc: Located) -> tuple[str | None, str | None]:
        """Next and previous sections with text, crossing leaf nodes; a whole node points at its first section."""
        book, sections = loc.book, loc.book.sections
        if loc.node.children:
            return None, None
        lo, hi = self._bounds(loc)
        first = bisect.bisect_left(sections, lo)
        before = sections[first - 1] if first > 0 else None
        if not loc.sections and loc.node.depth > 1:
            inside = sections[first] if first < len(sections) and sections[first][0] == lo[0] else None
            nxt = inside
            prv = before if before is not None else inside
        else:
            after = bisect.bisect_right(sections, hi)
            nxt = sections[after] if after < len(sections) else None
            prv = before
        return (book.section_ref(nxt).normal() if nxt else None, book.section_ref(prv).normal() if prv else None)

    def first_section(self, book: Book, node: Node, version: VersionText | None = None) -> Ref | None:
        """The first section with text under `node` (in one version, or in any)."""
        for leaf in node.leaves():
            place = book.positions[id(leaf)]
            if version is None:
                i = bisect.bisect_left(book.sections, (place, ()))
                if i < len(book.sections) and book.sections[i][0] == place:
                    return book.section_ref(book.sections[i])
            else:
                found = jagged.text_prefixes(book.text(leaf, version), leaf.depth)
                if found:
                    return leaf.ref(min(found))
        return None

    def spanning_refs(self, loc: Located) -> list[str]:
        """A range crossing sections split into one ref per section (first and last partial)."""
        book, leaf = loc.book, loc.node
        d = leaf.depth
        lo, hi = self._bounds(loc)
        keys = [k[1] for k in book.sections[bisect.bisect_left(book.sections, lo):bisect.bisect_right(book.sections, hi)]]
        start, end = loc.sections, loc.to_sections
        if len(start) >= d - 1 and start[: d - 1] not in keys:
            keys.insert(0, start[: d - 1])
        if len(end) >= d - 1 and end[: d - 1] not in keys:
            keys.append(end[: d - 1])
        refs = []
        for key in keys:
            first = key + start[d - 1:] if len(start) == d and key == start[: d - 1] else key
            last = key + end[d - 1:] if len(end) == d and key == end[: d - 1] else key
            if len(first) == d and len(last) == d - 1:
                last = key + (self._segment_count(book, leaf, key),)
            elif len(last) == d and len(first) == d - 1:
                first = key + (1,)
            refs.append(leaf.ref(first, last if last != first else ()).normal())
        return refs

    @staticmethod
    def _segment_count(book: Book, leaf: Node, key: tuple[int, ...]) -> int:
        return max(1, max(len(jagged.extract(book.text(leaf, v), leaf.depth, key) or [])
                          for v in book.versions))

    # --- categories ------------------------------------------------------------------------------

    def books_in_category(self, path: list[str], dependents: bool) -> list[str] | None:
        """Titles under a category path of the TOC (None if there is no such path); commentaries only on request."""
        level = self.tree.toc()
        for name in path:
            node = next((n for n in level if n.get("category") == name), None)
            if node is None:
                return None
            level = node["contents"]
        out: list[str] = []

        def walk(nodes):
            for n in nodes:
                if "contents" in n:
                    walk(n["contents"])
                elif dependents or not n.get("dependence"):
                    out.append(n["title"])

        walk(level)
        return out


def _parse_partial(rest: str, address_types: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sections of a ref; junk after valid sections is dropped, as Sefaria falls back to the part that matched."""
    try:
        return parse_sections(rest, address_types)
    except ValueError:
        pass
    for cut in range(len(rest) - 1, 0, -1):
        if rest[cut] in _CUTS:
            try:
                return parse_sections(rest[:cut], address_types)
            except ValueError:
                continue
    return (), ()

