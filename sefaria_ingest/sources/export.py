"""The `export` source: Sefaria-Export files (schemas/ + json/…/merged.json) from a URL or a local directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from ..client import SefariaClient
from ..errors import FetchFailed, MalformedResponse, UnknownBook
from ..export_tree import ExportTree, version_meta
from ..schema import parse_index, text_at
from . import BookFetch, FetchOptions, VersionPart, build_segments, is_url

LANGUAGE_DIRS = {"he": "Hebrew", "en": "English"}


def schema_path(book: str) -> str:
    return f"schemas/{book.replace(' ', '_')}.json"


def text_path(categories: list[str], book: str, lang: str) -> str:
    return "/".join(["json", *categories, book, LANGUAGE_DIRS[lang], "merged.json"])


def fetch_book_local(root: str | Path, book: str, options: FetchOptions) -> BookFetch:
    """Read a book from an export tree on disk (old 2015 or modern layout)."""
    tree = ExportTree(Path(root))
    index = tree.index(book)
    node = parse_index(index, book=book)
    parts = [VersionPart(version.language, version.versionTitle, version.license, leaf, text_at(leaf, version.text))
             for version in tree.versions(book) if version.language in options.languages
             for leaf in node.leaves()]
    return BookFetch(book, build_segments(index.get("title") or book, list(index.get("categories") or []),
                                          parts, options.languages))


async def fetch_book_http(client: SefariaClient, book: str, options: FetchOptions) -> BookFetch:
    """Fetch a book's schema and merged texts over HTTP(S) from an export base URL."""
    try:
        index = await _get_json_file(client, book, schema_path(book))
    except FetchFailed as exc:
        if "404" in exc.cause:
            raise UnknownBook(book, f"the export has no {schema_path(book)}") from exc
        raise
    node = parse_index(index, book=book)
    categories = list(index.get("categories") or [])
    if not categories:
        raise MalformedResponse(book, f"{schema_path(book)} has no categories")

    async def one_language(lang: str) -> list[VersionPart]:
        path = text_path(categories, index.get("title") or book, lang)
        try:
            doc = await _get_json_file(client, book, path)
        except FetchFailed as exc:
            if "404" in exc.cause:
                return []  # the book has no text in this language
            raise
        if not isinstance(doc, dict) or "text" not in doc:
            raise MalformedResponse(book, f"{path} has no `text`")
        meta = version_meta(doc)
        return [VersionPart(lang, meta.title, meta.license, leaf, text_at(leaf, doc["text"]))
                for leaf in node.leaves()]

    results = await asyncio.gather(*(one_language(lang) for lang in options.languages))
    parts = [p for r in results for p in r]
    return BookFetch(book, build_segments(index.get("title") or book, categories, parts, options.languages))


async def _get_json_file(client: SefariaClient, book: str, path: str):
    """An export JSON file; a body cut short in transit (it does not parse) is fetched again."""
    attempts = client.config.retry.max_attempts
    for attempt in range(1, attempts + 1):
        raw = await client.get_bytes("/" + path, ref=path)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if attempt == attempts:
                raise MalformedResponse(book, f"{path} is not valid JSON after {attempts} attempts ({exc})") from exc
            client.stats.retries += 1
