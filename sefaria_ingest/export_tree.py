"""A Sefaria-Export tree on disk (2015 or modern vintage), presented the way today's API and export present it.

Used by the replica (to serve the API) and by the `export` source (to read a local export), so both see the
same modern categories, index records and version metadata.

Modernising a 2015 tree (the rules, all applied idempotently so a modern tree passes through unchanged):
- category `Tanach` is today's `Tanakh` (TOC, index categories, export paths);
- a 2015 commentary lives at `Commentary/<base categories>/<Base book>/<X on Base>` (or
  `Halakhah/Commentary/...`) and its schemas/ file is a bare commentator record: today it is a
  JaggedArrayNode one level deeper than its base book (address type Integer, section "Comment"),
  `dependence: "Commentary"`, `base_text_titles`, `collective_title`, filed by COMMENTARY_PLACEMENT;
- complex schemas lack `nodeType` on SchemaNodes and sometimes depth/addressTypes on leaves: filled in;
- a book without a schemas/ file gets an index synthesised from its text file (`schema` min-tree, each
  leaf's depth from the text nesting; or `sectionNames` for a simple book);
- `lengths` of every leaf are computed from the texts (the 2015 values are stale, e.g. Berakhot 125 vs 127);
- each text file is one version; a `merged.json` is named after its first (highest-priority) source,
  because the real API never exposes "merged" as a versionTitle (see `version_meta`).
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .errors import BadSchema, MalformedResponse, UnknownBook
from .refs import TitleIndex
from .schema import parse_index, primary_title, text_at

LANGUAGE_DIRS = {"English": "en", "Hebrew": "he"}
LANGUAGE_DIR_NAMES = {code: name for name, code in LANGUAGE_DIRS.items()}
LANGUAGE_FAMILIES = {"he": "hebrew", "en": "english", "fr": "french", "de": "german", "es": "spanish",
                     "ru": "russian", "ar": "arabic", "yi": "yiddish", "fi": "finnish", "it": "italian",
                     "pt": "portuguese", "pl": "polish", "eo": "esperanto", "fa": "farsi", "arc": "aramaic"}
RTL_LANGUAGES = frozenset({"he", "arc", "yi", "ar", "fa", "lad", "jrb"})

RENAMED_CATEGORIES = {"Tanach": "Tanakh"}
# Where today's TOC files a commentary, keyed by its base book's corpus: (position in the base book's
# categories at which [group, commentator] is inserted, group). Rashi on Genesis -> Tanakh / Rishonim on
# Tanakh / Rashi / Torah; Rashi on Megillah -> Talmud / Bavli / Rishonim on Talmud / Rashi / Seder Moed.
# Other corpora: appended as .../<Commentary>/<commentator>.
COMMENTARY_PLACEMENT = {
    "Tanakh": (1, "Rishonim on Tanakh"),
    "Mishnah": (1, "Rishonim on Mishnah"),
    "Talmud": (2, "Rishonim on Talmud"),
    "Halakhah": (2, "Commentary"),
}
HEBREW_CATEGORIES = {
    "Tanakh": 'תנ"ך', "Rishonim on Tanakh": "ראשונים על התנ״ך", "Rishonim on Mishnah": "ראשונים על המשנה",
    "Rishonim on Talmud": "ראשונים על התלמוד", "Commentary": "מפרשים", "Acharonim": "אחרונים",
}
HEBREW_SECTION_NAMES = {
    "Chapter": "פרק", "Verse": "פסוק", "Comment": "פירוש", "Paragraph": "פסקה", "Daf": "דף", "Line": "שורה",
    "Mishna": "משנה", "Mishnah": "משנה", "Halacha": "הלכה", "Halakhah": "הלכה", "Siman": "סימן", "Seif": "סעיף",
    "Se'if": "סעיף", "Perek": "פרק", "Pasuk": "פסוק", "Section": "חלק",
}
# Fields of a version record that the API reports; a file's own values pass through (see VersionText.extra).
VERSION_OPTIONAL_FIELDS = (
    "status", "versionNotes", "formatAsPoetry", "digitizedBySefaria", "method", "heversionSource", "versionUrl",
    "versionTitleInHebrew", "versionNotesInHebrew", "shortVersionTitle", "shortVersionTitleInHebrew",
    "extendedNotes", "extendedNotesHebrew", "purchaseInformationImage", "purchaseInformationURL",
    "hasManuallyWrappedRefs",
)
_INDEX_TEXT_FIELDS = ("enDesc", "heDesc", "enShortDesc", "heShortDesc")
_DROPPED_2015_FIELDS = frozenset({"maps", "transliteratedTitle", "sparseness", "length", "lengths"})
_PREVIEW_FIELDS = frozenset({"refsPreview", "wholeRefPreview"})
_LANG_SUFFIX = re.compile(r"\[([a-z]{2,3})\]\s*$")


@dataclass(slots=True)
class VersionMeta:
    """What identifies one version of a text, derived the same way for the api and export sources."""

    title: str  # versionTitle
    source: str | None  # versionSource
    license: str
    language: str  # "he" | "en"

    @property
    def version_title(self) -> str:
        return self.title

    @property
    def version_source(self) -> str | None:
        return self.source


def version_meta(doc: dict) -> VersionMeta:
    """Version identity of an export text file: a merged file is named after its first (highest-priority) source."""
    book = doc.get("title") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("language") not in ("he", "en"):
        raise MalformedResponse(book, "export text file has no `language` of 'he' or 'en'")
    title, source = doc.get("versionTitle"), doc.get("versionSource")
    if title == "merged":
        sources = doc.get("versions") or []
        if not sources or not isinstance(sources[0], (list, tuple)) or not sources[0]:
            raise MalformedResponse(book, "merged export file lists no source versions")
        title = sources[0][0]
        source = sources[0][1] if len(sources[0]) > 1 else None
    if not isinstance(title, str) or not title:
        raise MalformedResponse(book, "export text file has no versionTitle")
    return VersionMeta(title, source, doc.get("license") or "unknown", doc["language"])


@dataclass(slots=True)
class VersionText:
    """One version of a book as the API describes it (field names are Sefaria's), with its full text."""

    title: str  # the book
    language: str
    versionTitle: str
    versionSource: str | None
    license: str
    priority: float | int | None
    isSource: bool
    isPrimary: bool
    languageFamilyName: str
    actualLanguage: str
    direction: str
    text: list | dict  # shared with the tree's cache: do not mutate
    path: str  # export-relative file it came from
    extra: dict = field(default_factory=dict)  # other VERSION_OPTIONAL_FIELDS the file carries


@dataclass(slots=True)
class BookEntry:
    """Where a book lives in the tree and how today's library files it."""

    title: str
    he_title: str
    categories: list[str]  # modern
    export_categories: list[str]  # the folders under json/ in this tree
    files: dict[str, list[str]]  # "he"/"en" -> export-relative text files
    schema_path: str | None  # export-relative schemas/ file holding this book's own index, if any
    order: list | None = None
    base_title: str | None = None  # commentaries: the book commented on
    collective_title: str | None = None  # commentaries: "Rashi"
    he_collective_title: str | None = None

    def modern_file(self, path: str) -> str:
        """Export-relative path of one of this book's files in today's layout (modern categories)."""
        lang_dir, name = Path(path).parts[-2:]
        return "/".join(["json", *self.categories, self.title, lang_dir, name])


class ExportTree:
    """A local Sefaria-Export tree, read lazily and cached in memory (the sample is 16 MB)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not (self.root / "json").is_dir():
            raise FileNotFoundError(f"{self.root} is not a Sefaria-Export tree (no json/ folder)")
        self._docs: dict[str, object] = {}
        self._books: dict[str, BookEntry] | None = None
        self._old_toc: dict[str, dict] = {}
        self._he_categories: dict[str, str] = dict(HEBREW_CATEGORIES)
        self._base_indexes: dict[str, dict] = {}
        self._indexes: dict[str, dict] = {}
        self._versions: dict[str, list[VersionText]] = {}
        self._names: TitleIndex[str] | None = None
        self._toc: list | None = None

    # --- catalogue -------------------------------------------------------------------------------

    def titles(self) -> list[str]:
        """Every book with text in the tree, in table-of-contents order."""
        return list(self._catalog())

    def book(self, title: str) -> BookEntry:
        return self._catalog()[self.resolve(title)]

    def resolve(self, name: str) -> str:
        """The book's primary title from any title variant, Hebrew title, `_` for space, any case."""
        books = self._catalog()
        if name in books:
            return name
        if self._names is None:
            self._names = TitleIndex()
            for title in books:  # primary titles first: the first spelling added wins
                self._names.add(title, title)
            for title in books:
                idx = self._base_index(title)
                spellings = [idx.get("heTitle", ""), *idx.get("titleVariants", ()),
                             *idx.get("heTitleVariants", ()), *(t["text"] for t in idx["schema"].get("titles", ()))]
                for spelling in spellings:
                    if spelling:
                        self._names.add(spelling, title)
        found = self._names.get(name)
        if found is None:
            raise UnknownBook(name, "not in the export tree")
        return found

    def _catalog(self) -> dict[str, BookEntry]:
        if self._books is None:
            self._books = self._scan()
        return self._books

    def _scan(self) -> dict[str, BookEntry]:
        toc_path = self.root / "table_of_contents.json"
        toc_order: list[str] = []
        if toc_path.exists():
            for node in _toc_books(orjson.loads(toc_path.read_bytes()), self._he_categories):
                self._old_toc.setdefault(node["title"], node)
                toc_order.append(node["title"])
        found: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
        json_root = self.root / "json"
        for dirpath, dirs, files in os.walk(json_root):
            dirs.sort()
            here = Path(dirpath)
            lang = LANGUAGE_DIRS.get(here.name)
            texts = sorted(f for f in files if f.endswith(".json"))
            if lang is None or not texts:
                continue
            book_dir = here.parent
            title = book_dir.name
            cats = list(book_dir.parent.relative_to(json_root).parts)
            per_version = [f for f in texts if f != "merged.json"]
            # A modern tree has per-version files beside merged.json: those are the versions.
            chosen = per_version or texts
            rel = [str(Path("json", *cats, title, here.name, f)) for f in chosen]
            entry = found.setdefault(title, (cats, {}))
            entry[1].setdefault(lang, []).extend(rel)
        order = [t for t in dict.fromkeys(toc_order) if t in found] + sorted(t for t in found if t not in toc_order)
        return {title: self._entry(title, *found[title]) for title in order}

    def _entry(self, title: str, export_cats: list[str], files: dict[str, list[str]]) -> BookEntry:
        toc = self._old_toc.get(title, {})
        schema_rel = f"schemas/{title.replace(' ', '_')}.json"
        schema_path = schema_rel if (self.root / schema_rel).exists() else None
        categories, base, collective = modern_categories(export_cats, title)
        he_title = toc.get("heTitle") or ""
        he_collective = None
        if collective:
            he_collective = toc.get("heCommentator") or self._commentator_he(collective, he_title)
            self._he_categories.setdefault(collective, he_collective)
        if not he_title:
            he_title = self._first_doc(files).get("heTitle") or title
        entry = BookEntry(title, he_title, categories, export_cats, files, schema_path, toc.get("order"),
                          base, collective, he_collective)
        if schema_path and "schema" not in self.read(schema_path) and not base:
            entry.schema_path = None  # a bare 2015 record, not this book's index
        return entry

    def _commentator_he(self, commentator: str, he_title: str) -> str:
        record = self.root / "schemas" / f"{commentator.replace(' ', '_')}.json"
        if record.exists():
            he = self.read(str(record.relative_to(self.root))).get("heTitle")
            if he:
                return he
        return he_title.split(" על ")[0] if " על " in he_title else commentator

    def _first_doc(self, files: dict[str, list[str]]) -> dict:
        for paths in files.values():
            for p in paths:
                return self.read(p)
        return {}

    # --- files -----------------------------------------------------------------------------------

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str):
        """A JSON file of the tree, parsed once and kept (shared: do not mutate)."""
        doc = self._docs.get(rel)
        if doc is None:
            try:
                doc = orjson.loads((self.root / rel).read_bytes())
            except orjson.JSONDecodeError as exc:
                raise MalformedResponse(None, f"{rel} is not valid JSON ({exc})") from exc
            self._docs[rel] = doc
        return doc

    # --- versions --------------------------------------------------------------------------------

    def versions(self, title: str) -> list[VersionText]:
        """One VersionText per text file: Hebrew first, then English."""
        title = self.resolve(title)
        if title not in self._versions:
            entry = self._catalog()[title]
            out = []
            for lang in ("he", "en"):
                for rel in entry.files.get(lang, ()):
                    out.append(_version_text(title, rel, self.read(rel)))
            self._versions[title] = out
        return list(self._versions[title])

    # --- index records ---------------------------------------------------------------------------

    def index(self, title: str, *, with_lengths: bool = True) -> dict:
        """The modern v2 index (`/api/v2/index`, export schemas/ file), `lengths` computed from the texts.

        with_lengths=False skips reading the texts (titles and node structure only).
        """
        title = self.resolve(title)
        if not with_lengths:
            return copy.deepcopy(self._base_index(title))
        if title not in self._indexes:
            idx = copy.deepcopy(self._base_index(title))
            root = parse_index(idx, book=title)
            texts = [v.text for v in self.versions(title)]
            for leaf in root.leaves():
                leaf.raw["lengths"] = jagged_lengths([text_at(leaf, t) for t in texts], leaf.depth)
            self._indexes[title] = idx
        return copy.deepcopy(self._indexes[title])

    def raw_index(self, title: str) -> dict:
        """The stored index record (`/api/v2/raw/index`): the v2 record minus its display-only additions."""
        return raw_from_v2(self.index(title))

    def _base_index(self, title: str) -> dict:
        """The v2 index without `lengths` (cheap: no text files read unless a schema must be synthesised)."""
        if title not in self._base_indexes:
            self._base_indexes[title] = self._build_index(title)
        return self._base_indexes[title]

    def _build_index(self, title: str) -> dict:
        entry = self._catalog()[title]
        record = self.read(entry.schema_path) if entry.schema_path else {}
        if isinstance(record, dict) and isinstance(record.get("schema"), dict):
            schema = modern_node(record["schema"])
        elif entry.base_title:
            schema = self._commentary_schema(entry)
        else:
            schema = self._synthesised_schema(entry)
        he_title = record.get("heTitle") or entry.he_title
        schema.setdefault("title", title)
        schema.setdefault("heTitle", he_title)
        en_variants = list(record.get("titleVariants") or [t["text"] for t in schema.get("titles", ())
                                                            if t.get("lang") == "en"] or [title])
        he_variants = list(record.get("heTitleVariants") or [t["text"] for t in schema.get("titles", ())
                                                               if t.get("lang") == "he"] or [he_title])
        idx: dict = {"title": title, "categories": list(entry.categories), "schema": schema}
        order = record.get("order") or entry.order
        if order:
            idx["order"] = order
        idx["authors"] = record.get("authors") or []
        for name in _INDEX_TEXT_FIELDS:
            idx[name] = record.get(name) or ""
        if entry.base_title:
            idx["dependence"] = "Commentary"
            idx["base_text_titles"] = [entry.base_title]
            idx["collective_title"] = {"en": entry.collective_title, "he": entry.he_collective_title}
        idx["heTitle"] = he_title
        idx["titleVariants"] = en_variants
        idx["heTitleVariants"] = he_variants
        if record.get("alts"):
            idx["alts"] = _strip_previews(record["alts"])
        if not schema.get("nodes"):
            idx["sectionNames"] = list(schema["sectionNames"])
            idx["depth"] = schema["depth"]
        idx["heCategories"] = [self._he_categories.get(c, c) for c in entry.categories]
        for key, value in record.items():
            if key not in idx and key not in _DROPPED_2015_FIELDS and key not in ("alt_structs", "collective_title"):
                idx[key] = value
        return idx

    def _commentary_schema(self, entry: BookEntry) -> dict:
        """Today's commentary node: the base book's addressing plus one "Comment" level."""
        doc = self._first_doc(entry.files)
        names = list(doc.get("sectionNames") or [])
        try:
            base = self._base_index(self.resolve(entry.base_title))["schema"]
        except UnknownBook:
            base = None
        if base is not None and not base.get("nodes"):
            address = list(base["addressTypes"]) + ["Integer"]
            names = list(base["sectionNames"]) + ["Comment"]
            he_names = list(base.get("heSectionNames") or [HEBREW_SECTION_NAMES.get(n, n) for n in base["sectionNames"]])
            he_names.append(HEBREW_SECTION_NAMES["Comment"])
        else:
            if not names:
                raise BadSchema(entry.title, "commentary with neither a simple base book nor sectionNames")
            address = ["Talmud" if i == 0 and n == "Daf" else "Integer" for i, n in enumerate(names)]
            he_names = [HEBREW_SECTION_NAMES.get(n, n) for n in names]
        titles = [{"lang": "en", "text": entry.title, "primary": True}, {"lang": "he", "text": entry.he_title, "primary": True}]
        return {"nodeType": "JaggedArrayNode", "depth": len(address), "addressTypes": address, "sectionNames": names,
                "titles": titles, "title": entry.title, "heTitle": entry.he_title, "heSectionNames": he_names,
                "key": entry.title}

    def _synthesised_schema(self, entry: BookEntry) -> dict:
        """An index for a book with no schemas/ file, from its text files (min-tree or sectionNames)."""
        docs = [self.read(p) for paths in entry.files.values() for p in paths]
        if not docs:
            raise BadSchema(entry.title, "no schemas/ file and no text files")
        mini = next((d["schema"] for d in docs if isinstance(d.get("schema"), dict)), None)
        if mini is not None:
            node = _from_min_tree(mini, [d.get("text") for d in docs], entry.title, entry.he_title)
            return modern_node(node)
        names = next((d["sectionNames"] for d in docs if d.get("sectionNames")), None)
        if not names:
            raise BadSchema(entry.title, "no schemas/ file, and its text files carry neither schema nor sectionNames")
        address = ["Talmud" if i == 0 and n == "Daf" else "Integer" for i, n in enumerate(names)]
        titles = [{"lang": "en", "text": entry.title, "primary": True}, {"lang": "he", "text": entry.he_title, "primary": True}]
        return modern_node({"nodeType": "JaggedArrayNode", "depth": len(names), "addressTypes": address,
                            "sectionNames": list(names), "titles": titles, "key": entry.title})

    # --- table of contents -----------------------------------------------------------------------

    def toc(self) -> list:
        """Today's `/api/index` payload for the books in this tree (modern categories)."""
        if self._toc is None:
            self._toc = self._build_toc()
        return copy.deepcopy(self._toc)

    def _build_toc(self) -> list:
        root: list = []
        for position, title in enumerate(self.titles(), 1):
            entry = self._catalog()[title]
            contents = root
            for depth, name in enumerate(entry.categories):
                node = next((n for n in contents if n.get("category") == name), None)
                if node is None:
                    node = {"category": name, "heCategory": self._he_categories.get(name, name),
                            "enDesc": "", "heDesc": "", "enShortDesc": "", "heShortDesc": "",
                            "isPrimary": depth == 0, "contents": []}
                    contents.append(node)
                contents = node["contents"]
            contents.append(self._toc_book(entry, position))
        for level in _walk_categories(root):
            for i, node in enumerate(level, 1):
                if "category" in node:
                    node["order"] = i
        return root

    def _toc_book(self, entry: BookEntry, position: int) -> dict:
        order = entry.order[-1] if isinstance(entry.order, list) and entry.order else position
        if isinstance(order, float) and order.is_integer():
            order = int(order)
        book = {"title": entry.title, "heTitle": entry.he_title, "categories": list(entry.categories),
                "primary_category": entry.categories[0] if entry.categories else "",
                "enShortDesc": "", "heShortDesc": "", "order": order}
        if entry.base_title:
            book.update({"dependence": "Commentary", "collectiveTitle": entry.collective_title,
                         "heCollectiveTitle": entry.he_collective_title, "commentator": entry.collective_title,
                         "heCommentator": entry.he_collective_title, "base_text_titles": [entry.base_title]})
        return book


# --- rules, as plain functions ---------------------------------------------------------------------


def modern_categories(export_cats: list[str], title: str) -> tuple[list[str], str | None, str | None]:
    """(today's categories, base book, commentator) from a book's folder path in a 2015 or modern tree."""
    cats = [RENAMED_CATEGORIES.get(c, c) for c in export_cats]
    if " on " not in title or not cats:
        return cats, None, None
    commentator, base = title.split(" on ", 1)
    if cats[0] == "Commentary":  # Commentary/<base categories>/<Base book>
        base_cats = cats[1:-1] if cats[-1] == base else cats[1:]
    elif len(cats) > 1 and cats[1] == "Commentary":  # Halakhah/Commentary/<base categories below Halakhah>
        base_cats = [cats[0], *cats[2:]]
    else:
        modern_commentary = any(c.startswith("Rishonim on") or c == "Commentary" for c in cats)
        return cats, (base if modern_commentary else None), (commentator if modern_commentary else None)
    if not base_cats:
        return ["Commentary", commentator], base, commentator
    at, group = COMMENTARY_PLACEMENT.get(base_cats[0], (len(base_cats), "Commentary"))
    return base_cats[:at] + [group, commentator] + base_cats[at:], base, commentator


def modern_node(raw: dict) -> dict:
    """A schema node with every field today's index has (nodeType, depth, addressTypes, titles, key...).

    `lengths` are left out: ExportTree.index computes them from the texts.
    """
    children = raw.get("nodes")
    out: dict = {}
    if children:
        out["nodeType"] = raw.get("nodeType") or "SchemaNode"
    else:
        depth = raw.get("depth") or len(raw.get("addressTypes") or ()) or len(raw.get("sectionNames") or ())
        if not depth:
            raise BadSchema(raw.get("title") or raw.get("key"), "schema leaf with no depth, addressTypes or sectionNames")
        names = list(raw.get("sectionNames") or (["Chapter", "Paragraph"][-depth:] if depth <= 2 else ["Section"] * depth))
        out["nodeType"] = raw.get("nodeType") or "JaggedArrayNode"
        out["depth"] = depth
        out["addressTypes"] = list(raw.get("addressTypes") or ["Integer"] * depth)
        out["sectionNames"] = names
    if raw.get("default"):
        out["default"] = True
        out["title"] = ""
        out["heTitle"] = ""
    else:
        titles = list(raw.get("titles") or [])
        en = primary_title(raw, "en")
        he = primary_title(raw, "he")
        if not any(t.get("lang") == "en" and t.get("primary") for t in titles) and en:
            titles.append({"lang": "en", "text": en, "primary": True})
        if not any(t.get("lang") == "he" and t.get("primary") for t in titles) and he:
            titles.append({"lang": "he", "text": he, "primary": True})
        out["titles"] = titles
        out["title"] = en
        out["heTitle"] = he
    if not children:
        out["heSectionNames"] = list(raw.get("heSectionNames") or [HEBREW_SECTION_NAMES.get(n, n) for n in out["sectionNames"]])
    out["key"] = "default" if raw.get("default") else (raw.get("key") or out.get("title") or "")
    for key, value in raw.items():
        if key not in out and key not in ("nodes", "lengths"):
            out[key] = value
    if children:
        out["nodes"] = [modern_node(c) for c in children]
    return out


def _from_min_tree(mini: dict, texts: list, en: str, he: str, path: tuple = ()) -> dict:
    """A schema node from an export file's `schema` min-tree; leaf depth from how deep its text nests."""
    titles = [{"lang": "en", "text": en, "primary": True}, {"lang": "he", "text": he, "primary": True}]
    if mini.get("nodes"):
        nodes = []
        for child in mini["nodes"]:
            c_en, c_he = child.get("enTitle", ""), child.get("heTitle", "")
            nodes.append(_from_min_tree(child, texts, c_en, c_he, path=path + (c_en,)))
        return {"nodeType": "SchemaNode", "titles": titles, "key": mini.get("key") or en, "nodes": nodes}
    depth = 1
    for text in texts:
        value = text
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        depth = max(depth, _nesting(value))
    node = {"nodeType": "JaggedArrayNode", "depth": depth, "addressTypes": ["Integer"] * depth}
    if en == "":
        node["default"] = True
    else:
        node["titles"] = titles
        node["key"] = en
    return node


def _nesting(value) -> int:
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


def jagged_lengths(arrays: list, depth: int) -> list[int]:
    """`lengths` of one node over several versions: [top-level sections, then elements with text per level]."""
    lists = [a for a in arrays if isinstance(a, list)]
    counts = [0] * max(depth, 1)
    counts[0] = max((trimmed_len(a) for a in lists), default=0)
    _count_union(lists, 0, depth, counts)
    return counts


def _count_union(arrays: list[list], level: int, depth: int, counts: list[int]) -> None:
    """Count, per level below the top, the positions that hold text in any of `arrays` (the versions)."""
    for i in range(max((len(a) for a in arrays), default=0)):
        items = [a[i] for a in arrays if i < len(a)]
        if not any(has_text(x) for x in items):
            continue
        if level:
            counts[level] += 1
        if level + 1 < depth:
            _count_union([x for x in items if isinstance(x, list)], level + 1, depth, counts)


def has_text(value) -> bool:
    """True when a non-blank string sits anywhere inside `value` (nested lists or dicts)."""
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(has_text(v) for v in value)
    if isinstance(value, dict):
        return any(has_text(v) for v in value.values())
    return False


def trimmed_len(arr) -> int:
    """Length of a list without its trailing textless elements (0 for a non-list)."""
    if not isinstance(arr, list):
        return 0
    n = len(arr)
    while n and not has_text(arr[n - 1]):
        n -= 1
    return n


def raw_from_v2(v2: dict) -> dict:
    """The raw (stored) index record from a v2 one."""
    raw: dict = {}
    for key, value in v2.items():
        if key in ("heTitle", "titleVariants", "heTitleVariants", "heCategories", "sectionNames", "depth") \
                or key.endswith("String"):
            continue
        if key == "alts":
            raw["alt_structs"] = value
        elif key == "schema":
            raw["schema"] = _raw_node(value)
        elif key == "collective_title" and isinstance(value, dict):
            raw[key] = value.get("en", "")
        elif key == "authors":
            raw[key] = [a.get("slug", "") if isinstance(a, dict) else a for a in value]
        else:
            raw[key] = value
    return raw


def _raw_node(node: dict) -> dict:
    out = {k: v for k, v in node.items() if k not in ("title", "heTitle", "heSectionNames", "nodes")}
    if node.get("nodes"):
        out["nodes"] = [_raw_node(c) for c in node["nodes"]]
    return out


def _version_text(title: str, rel: str, doc: dict) -> VersionText:
    meta = version_meta(doc)
    suffix = _LANG_SUFFIX.search(meta.title)
    actual = doc.get("actualLanguage") or (suffix.group(1) if suffix else meta.language)
    family = doc.get("languageFamilyName") or LANGUAGE_FAMILIES.get(actual, actual)
    # 2015 files carry no isSource/isPrimary: their Hebrew is the source text and the primary version.
    is_source = bool(doc["isSource"]) if "isSource" in doc else meta.language == "he"
    is_primary = bool(doc.get("isPrimary", doc.get("isBaseText", is_source)))
    direction = doc.get("direction") or ("rtl" if actual in RTL_LANGUAGES else "ltr")
    extra = {k: doc[k] for k in VERSION_OPTIONAL_FIELDS if doc.get(k) is not None}
    text = doc.get("text")
    if not isinstance(text, (list, dict)):
        raise MalformedResponse(title, f"{rel} has no `text` array or object")
    _blank_placeholders(text)
    return VersionText(title, meta.language, meta.title, meta.source, meta.license, doc.get("priority"),
                       is_source, is_primary, family, actual, direction, text, rel, extra)


def _blank_placeholders(value) -> None:
    """2015 merges left `0` where a segment was missing (Rashi on Genesis, Shulchan Arukh): make those ""."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, (list, dict)):
            _blank_placeholders(item)
        elif not isinstance(item, str):
            value[key] = ""


def _toc_books(nodes: list, he_categories: dict[str, str]):
    """Book nodes of an (old or modern) TOC in order; records each category's Hebrew name on the way."""
    for node in nodes:
        if "contents" in node:
            name = RENAMED_CATEGORIES.get(node.get("category"), node.get("category"))
            if name and node.get("heCategory"):
                he_categories.setdefault(name, node["heCategory"])
            yield from _toc_books(node["contents"], he_categories)
        elif "title" in node and not node.get("isCollection"):
            yield node


def _walk_categories(level: list):
    yield level
    for node in level:
        if "contents" in node:
            yield from _walk_categories(node["contents"])


def _strip_previews(value):
    if isinstance(value, dict):
        return {k: _strip_previews(v) for k, v in value.items() if k not in _PREVIEW_FIELDS}
    if isinstance(value, list):
        return [_strip_previews(v) for v in value]
    return value


