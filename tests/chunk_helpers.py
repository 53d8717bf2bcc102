"""A verse as a one-segment Chunk, for index and search tests that build their own data."""

from sefaria_ingest.normalize import search_form
from sefaria_ingest.records import Chunk


def make_chunk(book: str, lang: str, chapter: int, verse: int, text: str, section: str = "Writings") -> Chunk:
    ref = f"{book} {chapter}:{verse}"
    return Chunk(
        id=f"{book}|{lang}|{chapter}:{verse}",
        ref=ref,
        he_ref=f"{book} {chapter}:{verse} (he)",
        refs=[ref],
        book=book,
        categories=["Tanakh", section],
        lang=lang,
        version_title="merged",
        license="CC-BY",
        text=text,
        search_text=search_form(text),
        original=text,
        n_tokens=len(text.split()),
    )
