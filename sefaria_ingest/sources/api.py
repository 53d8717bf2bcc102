"""The `api` source: one v3 request per leaf node (all wanted languages at once), per-section when needed.

Never walks `next` one section at a time: the schema says what exists, so every request can run concurrently.
"""

from __future__ import annotations

import asyncio

from ..client import SefariaClient
from ..errors import FetchFailed, MalformedResponse, UnknownBook
from ..refs import section_to_str
from ..schema import Node, parse_index
from . import LANGUAGE_FAMILIES, BookFetch, FetchOptions, VersionPart, build_segments

_NO_TEXT = "We have no text for"


async def fetch_index(client: SefariaClient, book: str) -> dict:
    """The book's raw index record; an `{"error": ...}` answer means the title is unknown."""
    status, body = await client.get_json(f"/api/v2/raw/index/{book}", ref=book)
    if isinstance(body, dict) and "error" in body:
        raise UnknownBook(book, f"Sefaria says: {body['error']}")
    if status != 200 or not isinstance(body, dict) or "schema" not in body:
        raise MalformedResponse(book, f"index answer (HTTP {status}) has no schema")
    return body


async def fetch_book_api(client: SefariaClient, book: str, options: FetchOptions) -> BookFetch:
    """Fetch every leaf node of `book` in the wanted languages through the v3 texts API."""
    index = await fetch_index(client, book)
    root = parse_index(index, book=book)
    categories = list(index.get("categories") or [])
    version_params = [
        ("version", LANGUAGE_FAMILIES[lang] + ("|all" if options.versions == "all" else ""))
        for lang in options.languages
    ]
    leaves = root.leaves()
    results = await asyncio.gather(*(_fetch_leaf(client, book, leaf, version_params, options) for leaf in leaves))
    parts = [part for leaf_parts in results for part in leaf_parts]
    segments = build_segments(index.get("title") or book, categories, parts, options.languages)
    return BookFetch(book=book, segments=segments)


def _segment_count(leaf: Node) -> int | None:
    lengths = leaf.lengths
    if isinstance(lengths, list) and len(lengths) > 1 and isinstance(lengths[-1], int):
        return lengths[-1]
    return None


async def _fetch_leaf(client, book, leaf: Node, version_params, options) -> list[VersionPart]:
    size = _segment_count(leaf)
    if leaf.depth > 1 and size is not None and size > options.max_segments_per_request:
        return await _fetch_by_section(client, book, leaf, version_params)
    try:
        body = await _get_text(client, book, leaf.ref().normal(), version_params)
    except FetchFailed:
        if leaf.depth == 1:
            raise
        return await _fetch_by_section(client, book, leaf, version_params)
    if body is None:
        return []
    return _parts(book, leaf, body, lambda text: text)


async def _get_text(client, book: str, tref: str, version_params) -> dict | None:
    """One v3 texts call; None when Sefaria has no text there (404 'We have no text')."""
    status, body = await client.get_json(f"/api/v3/texts/{tref}", version_params, ref=tref)
    if status == 404 and isinstance(body, dict) and str(body.get("error", "")).startswith(_NO_TEXT):
        return None
    if status != 200 or not isinstance(body, dict) or "error" in body:
        cause = body.get("error") if isinstance(body, dict) else f"HTTP {status}"
        raise FetchFailed(book, f"v3 texts answered {status}: {cause}", ref=tref)
    if not isinstance(body.get("versions"), list):
        raise MalformedResponse(book, "v3 texts answer has no `versions` list", ref=tref)
    return body


def _parts(book: str, leaf: Node, body: dict, place) -> list[VersionPart]:
    parts = []
    for version in body["versions"]:
        if not isinstance(version, dict) or "text" not in version or "versionTitle" not in version:
            raise MalformedResponse(book, "a version lacks `text` or `versionTitle`", ref=body.get("ref"))
        lang = _lang_of(version)
        if lang is None:
            continue
        parts.append(VersionPart(lang, version["versionTitle"], str(version.get("license") or "unknown"),
                                 leaf, place(version["text"])))
    return parts


def _lang_of(version: dict) -> str | None:
    family = version.get("languageFamilyName")
    for code, name in LANGUAGE_FAMILIES.items():
        if family == name:
            return code
    if not family and version.get("language") in LANGUAGE_FAMILIES:
        return version["language"]
    return None


async def _top_sections(client, book: str, leaf: Node) -> int:
    """How many top-level sections the leaf has: its schema lengths, else /api/shape."""
    if isinstance(leaf.lengths, list) and leaf.lengths and isinstance(leaf.lengths[0], int):
        return leaf.lengths[0]
    status, body = await client.get_json(f"/api/shape/{book}", ref=book)
    if not isinstance(body, list) or not body:
        raise MalformedResponse(book, f"shape answer (HTTP {status}) is not a list")
    entries = body[0].get("chapters", []) if body[0].get("isComplex") else body
    for entry in entries:
        if isinstance(entry, dict) and entry.get("title", entry.get("section")) in (leaf.en_title, book):
            chapters = entry.get("chapters")
            if isinstance(chapters, list):
                return len(chapters)
    raise MalformedResponse(book, f"shape has no entry for {leaf.en_title!r}")


async def _fetch_by_section(client, book: str, leaf: Node, version_params) -> list[VersionPart]:
    """Per-section requests for one leaf, reassembled into one jagged array per version."""
    count = await _top_sections(client, book, leaf)
    address = leaf.address_types[0]
    refs = [f"{leaf.ref().normal()} {section_to_str(n, address)}" for n in range(1, count + 1)]
    bodies = await asyncio.gather(*(_get_text(client, book, tref, version_params) for tref in refs))
    assembled: dict[tuple[str, str, str], list] = {}
    for n, body in enumerate(bodies):
        if body is None:
            continue
        for part in _parts(book, leaf, body, lambda text: text):
            key = (part.lang, part.version_title, part.license)
            array = assembled.setdefault(key, [[] for _ in range(count)])
            array[n] = part.text
    return [VersionPart(lang, title, lic, leaf, array) for (lang, title, lic), array in assembled.items()]
