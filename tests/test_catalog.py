"""Catalog: selection by title and category path, near-match hints, safe file names."""

import pytest

from sefaria_ingest.catalog import CatalogError, book_slug, iter_toc_books, select_books

TOC = [
    {"category": "Tanakh", "contents": [
        {"category": "Torah", "contents": [
            {"title": "Genesis", "heTitle": "בראשית", "categories": ["Tanakh", "Torah"]},
            {"title": "Exodus", "heTitle": "שמות", "categories": ["Tanakh", "Torah"]},
        ]},
        {"category": "Writings", "contents": [
            {"title": "Ruth", "heTitle": "רות", "categories": ["Tanakh", "Writings"]},
        ]},
    ]},
    {"category": "Halakhah", "contents": [
        {"title": "Mishneh Torah, Repentance", "heTitle": "משנה תורה, הלכות תשובה", "categories": ["Halakhah"]},
        {"nodeType": "TocCollectionNode", "isCollection": True, "title": "A collection", "name": "x"},
    ]},
]


def test_iter_toc_books_skips_collections_and_categories():
    assert [b["title"] for b in iter_toc_books(TOC)] == ["Genesis", "Exodus", "Ruth", "Mishneh Torah, Repentance"]


def test_select_by_title_and_category_in_toc_order_without_duplicates():
    chosen = select_books(TOC, ["Ruth", "genesis", "בראשית"], ["Tanakh/Torah"])
    assert [b.title for b in chosen] == ["Genesis", "Exodus", "Ruth"]
    assert chosen[0].categories == ["Tanakh", "Torah"]


def test_unknown_titles_and_categories_fail_with_near_matches():
    with pytest.raises(CatalogError) as info:
        select_books(TOC, ["Genesys", "Mishneh Torah, Repentence"], ["Tanakh/Torahh"])
    message = str(info.value)
    assert "'Genesys'" in message and "did you mean 'Genesis'" in message
    assert "'Mishneh Torah, Repentance'" in message
    assert "'Tanakh/Torah'" in message


@pytest.mark.parametrize("title, slug", [
    ("Mishneh Torah, Repentance", "Mishneh_Torah,_Repentance"),
    ("Yechol Me'rosh Chodesh", "Yechol_Me'rosh_Chodesh"),
    ("תניא", "תניא"),
])
def test_book_slug(title, slug):
    assert book_slug(title) == slug


@pytest.mark.parametrize("title", ["../etc/passwd", "a/b", "..", ".hidden", "bad\u200etitle", ""])
def test_book_slug_rejects_titles_that_escape_results(title):
    with pytest.raises(CatalogError):
        book_slug(title)
