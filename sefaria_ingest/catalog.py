"""The catalog: which books a run ingests, from Sefaria's table of contents and the config selection."""

from __future__ import annotations

import difflib
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from .atomic import atomic_write_bytes
from .errors import IngestError
from .sources import is_url


class CatalogError(IngestError):
    """The selection names books or categories the table of contents does not have."""


@dataclass(slots=True)
class BookEntry:
    title: str
    he_title: str
    categories: list[str]
    slug: str


_FORBIDDEN = set('/\\\0')


def book_slug(title: str) -> str:
    """A safe file name for a title ("Mishneh Torah, Repentance" -> "Mishneh_Torah,_Repentance").

    Titles that could escape results/ (path separators, "..", leading dots, control characters) are rejected.
    """
    text = unicodedata.normalize("NFC", title).strip()
    if not text or _FORBIDDEN & set(text) or ".." in text or text.startswith(".") or text.startswith("-"):
        raise CatalogError(title, "this title cannot be used as a file name (path separator, '..' or leading dot)")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise CatalogError(title, "this title contains control or format characters")
    return text.replace(" ", "_")


def iter_toc_books(toc) -> list[dict]:
    """Every book node of an /api/index (or export table_of_contents.json) tree, in TOC order."""
    books: list[dict] = []

    def walk(nodes):
        for node in nodes:
            if not isinstance(node, dict) or node.get("isCollection"):
                continue
            if "contents" in node:
                walk(node["contents"])
            elif "title" in node:
                books.append(node)

    if not isinstance(toc, list):
        raise CatalogError(None, "the table of contents is not a list of categories")
    walk(toc)
    return books


def select_books(toc, titles: list[str], categories: list[str]) -> list[BookEntry]:
    """Books named in `titles` plus every book under each category path ("Tanakh/Torah"), in TOC order."""
    books = iter_toc_books(toc)
    by_title = {b["title"]: b for b in books}
    folded = {b["title"].casefold(): b["title"] for b in books}
    folded.update({b["heTitle"]: b["title"] for b in books if b.get("heTitle")})
    problems = []
    chosen: dict[str, dict] = {}
    for title in titles:
        real = by_title.get(title) or by_title.get(folded.get(title.casefold(), ""))
        if real is None:
            near = difflib.get_close_matches(title, list(by_title), n=3, cutoff=0.6)
            problems.append(f"unknown book {title!r}" + (f" (did you mean {', '.join(map(repr, near))}?)" if near else ""))
        else:
            chosen[real["title"]] = real
    all_paths = {"/".join(b.get("categories", [])[:i]) for b in books for i in range(1, len(b.get("categories", [])) + 1)}
    for path in categories:
        parts = [p for p in path.strip("/").split("/") if p]
        matched = [b for b in books if b.get("categories", [])[: len(parts)] == parts]
        if not matched:
            near = difflib.get_close_matches("/".join(parts), sorted(all_paths), n=3, cutoff=0.6)
            problems.append(f"unknown category {path!r}" + (f" (did you mean {', '.join(map(repr, near))}?)" if near else ""))
        for b in matched:
            chosen.setdefault(b["title"], b)
    if problems:
        raise CatalogError(None, "; ".join(problems))
    order = {b["title"]: i for i, b in enumerate(books)}
    entries = [BookEntry(b["title"], b.get("heTitle", ""), list(b.get("categories", [])), book_slug(b["title"]))
               for b in sorted(chosen.values(), key=lambda b: order[b["title"]])]
    slugs: dict[str, str] = {}
    for e in entries:
        if e.slug in slugs:
            raise CatalogError(e.title, f"its file name {e.slug!r} collides with {slugs[e.slug]!r}")
        slugs[e.slug] = e.title
    return entries


def write_catalog(path: str | Path, entries: list[BookEntry], source: str) -> None:
    doc = {"source": source, "books": [asdict(e) for e in entries]}
    atomic_write_bytes(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def read_catalog(path: str | Path) -> list[BookEntry]:
    doc = orjson.loads(Path(path).read_bytes())
    return [BookEntry(**b) for b in doc["books"]]


def cache_is_fresh(path: Path, max_age_hours: float) -> bool:
    return path.exists() and (time.time() - path.stat().st_mtime) < max_age_hours * 3600


async def fetch_toc(source: str, base: str, client_config) -> list:
    """Sefaria's table of contents: /api/index (api), table_of_contents.json (export URL or directory)."""
    if source == "export" and not is_url(base):
        from .export_tree import ExportTree

        return ExportTree(Path(base)).toc()
    import dataclasses

    from .client import SefariaClient

    config = dataclasses.replace(client_config, base_url=base)
    async with SefariaClient(config, book="table of contents") as client:
        if source == "api":
            status, toc = await client.get_json("/api/index")
        else:
            toc = orjson.loads(await client.get_bytes("/table_of_contents.json"))
    if isinstance(toc, dict) and "error" in toc:
        raise CatalogError(None, f"the server refused the table of contents: {toc['error']}")
    return toc
