"""ExportTree: the 2015 sample presented the way today's Sefaria presents it."""

from __future__ import annotations

import json
import os
import runpy

import pytest

from sefaria_ingest.errors import MalformedResponse, UnknownBook
from sefaria_ingest.export_tree import ExportTree, version_meta
from sefaria_ingest.schema import iter_segments, parse_index, text_at


@pytest.fixture(scope="module")
def tree(sample_dir) -> ExportTree:
    return ExportTree(sample_dir)


def _load(path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _toc_books(nodes):
    for node in nodes:
        if "contents" in node:
            yield from _toc_books(node["contents"])
        else:
            yield node


def _toc_categories(nodes, path=()):
    for node in nodes:
        if "contents" in node:
            yield path + (node["category"],)
            yield from _toc_categories(node["contents"], path + (node["category"],))


def test_every_book_with_text_is_listed_once(tree, sample_dir):
    on_disk = {p.parent.parent.name for p in (sample_dir / "json").rglob("merged.json")}
    assert sorted(tree.titles()) == sorted(on_disk)
    toc_titles = [b["title"] for b in _toc_books(tree.toc())]
    assert sorted(toc_titles) == sorted(on_disk)


def test_tanach_is_tanakh_everywhere(tree):
    for title in tree.titles():
        assert "Tanach" not in tree.book(title).categories, title
        assert "Tanach" not in tree.index(title)["categories"], title
    cats = list(_toc_categories(tree.toc()))
    assert ("Tanakh", "Torah") in cats
    assert not any("Tanach" in c for c in cats)
    assert tree.index("Genesis")["categories"] == ["Tanakh", "Torah"]
    # The files stay where the 2015 tree has them.
    assert tree.book("Genesis").files["he"] == ["json/Tanach/Torah/Genesis/Hebrew/merged.json"]


@pytest.mark.parametrize("title, categories", [
    # From the issue: today's categories of these commentaries.
    ("Rashi on Genesis", ["Tanakh", "Rishonim on Tanakh", "Rashi", "Torah"]),
    ("Bartenura on Mishnah Berakhot", ["Mishnah", "Rishonim on Mishnah", "Bartenura", "Seder Zeraim"]),
    ("Rashi on Megillah", ["Talmud", "Bavli", "Rishonim on Talmud", "Rashi", "Seder Moed"]),
    # Same rule table for the other sample commentaries.
    ("Ibn Ezra on Ruth", ["Tanakh", "Rishonim on Tanakh", "Ibn Ezra", "Writings"]),
    ("Rashi on Esther", ["Tanakh", "Rishonim on Tanakh", "Rashi", "Writings"]),
    ("Kessef Mishneh on Mishneh Torah, Repentance", ["Halakhah", "Mishneh Torah", "Commentary", "Kessef Mishneh", "Sefer Madda"]),
])
def test_commentary_index_is_modern(tree, sample_dir, title, categories):
    idx = tree.index(title)
    commentator, base = title.split(" on ", 1)
    assert idx["categories"] == categories
    assert idx["dependence"] == "Commentary"
    assert idx["base_text_titles"] == [base]
    assert idx["collective_title"]["en"] == commentator
    assert idx["collective_title"]["he"]
    schema = idx["schema"]
    assert schema["nodeType"] == "JaggedArrayNode"
    base_schema = _load(sample_dir / "schemas" / f"{base.replace(' ', '_')}.json")["schema"]
    assert schema["depth"] == base_schema["depth"] + 1
    assert schema["addressTypes"][: base_schema["depth"]] == base_schema["addressTypes"]
    assert schema["addressTypes"][-1] == "Integer"
    assert schema["sectionNames"] == base_schema["sectionNames"] + ["Comment"]
    assert len(schema["heSectionNames"]) == schema["depth"]
    assert idx["sectionNames"] == schema["sectionNames"] and idx["depth"] == schema["depth"]
    raw = tree.raw_index(title)
    assert raw["collective_title"] == commentator
    assert "heTitle" not in raw and "title" not in raw["schema"]


def test_rashi_on_megillah_addressing(tree):
    schema = tree.index("Rashi on Megillah")["schema"]
    assert schema["addressTypes"] == ["Talmud", "Integer", "Integer"]
    assert schema["sectionNames"] == ["Daf", "Line", "Comment"]


def test_complex_schema_gets_node_types(tree):
    schema = tree.index("Pesach Haggadah")["schema"]
    assert schema["nodeType"] == "SchemaNode"
    magid = next(n for n in schema["nodes"] if n["title"] == "Magid")
    assert magid["nodeType"] == "SchemaNode"
    for leaf in magid["nodes"]:
        assert leaf["nodeType"] == "JaggedArrayNode"
        assert leaf["depth"] == len(leaf["addressTypes"]) == len(leaf["sectionNames"]) == 1
        assert leaf["key"] and leaf["title"] and leaf["heTitle"]


def test_leaf_order_follows_the_schema_not_the_text_file(tree, sample_dir):
    raw = _load(sample_dir / "schemas" / "Pesach_Haggadah.json")["schema"]

    def keys(node, path=()):
        if node.get("nodes"):
            for child in node["nodes"]:
                yield from keys(child, path + (child["title"],))
        else:
            yield path

    schema_order = list(keys(raw))
    root = parse_index(tree.index("Pesach Haggadah"), book="Pesach Haggadah")
    assert [leaf.text_path for leaf in root.leaves()] == schema_order
    text = _load(sample_dir / "json/Liturgy/Pesach Haggadah/English/merged.json")["text"]
    top = [n["title"] for n in raw["nodes"]]
    assert sorted(text) == sorted(top) and list(text) != top  # the file's dict order is not the book's order


def test_chofetz_chaim_index_is_synthesised_from_its_text(tree, sample_dir):
    assert not (sample_dir / "schemas" / "Chofetz_Chaim.json").exists()
    doc = _load(sample_dir / "json/Halakhah/Acharonim/Chofetz Chaim/Hebrew/merged.json")
    idx = tree.index("Chofetz Chaim")
    assert idx["categories"] == ["Halakhah", "Acharonim"]
    root = parse_index(idx, book="Chofetz Chaim")
    assert root.children, "a complex book"

    def nesting(value):
        return 1 + max((nesting(v) for v in value), default=0) if isinstance(value, list) else 0

    paths = []

    def text_paths(value, path=()):
        if isinstance(value, dict):
            for k, v in value.items():
                text_paths(v, path + (k,))
        else:
            paths.append(path)

    text_paths(doc["text"])
    leaves = {leaf.text_path: leaf for leaf in root.leaves()}
    assert sorted(leaves) == sorted(paths)
    for path, leaf in leaves.items():
        value = text_at(leaf, doc["text"])
        assert leaf.depth == max(1, nesting(value)), path
        assert leaf.address_types == ("Integer",) * leaf.depth
        assert leaf.default == (path[-1] == "")
    principle = next(n for n in idx["schema"]["nodes"] if n["title"].startswith("Part One"))["nodes"][0]
    default = next(n for n in principle["nodes"] if n.get("default"))
    assert default["key"] == "default" and default["title"] == ""


def test_lengths_are_computed_from_the_texts(tree, sample_dir):
    he = _load(sample_dir / "json/Tanach/Torah/Genesis/Hebrew/merged.json")["text"]
    en = _load(sample_dir / "json/Tanach/Torah/Genesis/English/merged.json")["text"]
    verses = sum(1 for c in range(max(len(he), len(en))) for v in range(max(len(he[c]), len(en[c])))
                 if (v < len(he[c]) and he[c][v].strip()) or (v < len(en[c]) and en[c][v].strip()))
    assert tree.index("Genesis")["schema"]["lengths"] == [len(he), verses]
    # The 2015 schema's Berakhot lengths are stale (125 amudim); the text has 127 (64a).
    stale = _load(sample_dir / "schemas/Berakhot.json")["schema"]["lengths"]
    bavli = _load(sample_dir / "json/Talmud/Bavli/Seder Zeraim/Berakhot/Hebrew/merged.json")["text"]
    lengths = tree.index("Berakhot")["schema"]["lengths"]
    assert lengths[0] == len(bavli) != stale[0]
    for title in tree.titles():
        root = parse_index(tree.index(title), book=title)
        for leaf in root.leaves():
            assert leaf.lengths and len(leaf.lengths) == leaf.depth, (title, leaf.en_title)


def test_every_segment_is_enumerable_with_count_py_counts(tree, sample_dir):
    count = runpy.run_path(str(sample_dir / "count.py"))
    expected = count["scan"](str(sample_dir))  # {book dir: {Language: stats}}
    seen_files = 0
    for title in tree.titles():
        root = parse_index(tree.index(title), book=title)
        for version in tree.versions(title):
            lang_dir = os.path.dirname(version.path)
            book_dir = os.path.relpath(os.path.dirname(lang_dir), "json")
            nonempty = [sections for leaf in root.leaves()
                        for sections, text in iter_segments(leaf, text_at(leaf, version.text)) if text.strip()]
            assert len(nonempty) == expected[book_dir][os.path.basename(lang_dir)]["nonempty"], version.path
            assert len(set(map(tuple, nonempty))) == len(nonempty) or root.children, version.path
            seen_files += 1
    assert seen_files == sum(len(v) for v in expected.values())


def test_versions_are_named_after_their_first_source(tree, sample_dir):
    path = sample_dir / "json/Talmud/Bavli/Seder Zeraim/Berakhot/English/merged.json"
    doc = _load(path)
    (he, en) = tree.versions("Berakhot")
    assert (he.language, en.language) == ("he", "en")
    assert en.versionTitle == doc["versions"][0][0] != "merged"
    assert en.versionSource == doc["versions"][0][1]
    assert en.license == "unknown"  # 2015 merged files carry no license
    assert he.isSource and he.isPrimary and not en.isSource and not en.isPrimary
    assert (he.direction, en.direction) == ("rtl", "ltr")
    assert (he.languageFamilyName, en.languageFamilyName) == ("hebrew", "english")
    cc = tree.versions("Chofetz Chaim")
    assert [(v.versionTitle, v.license) for v in cc] == [("Chofetz Chaim", "CC-BY-SA")]


def test_version_meta_rule(shared_dir):
    per_version = _load(shared_dir / "sefaria-api/examples/export/json/Tanakh/Prophets/Obadiah/Hebrew"
                        / "Tanach with Ta'amei Hamikra.json")
    meta = version_meta(per_version)
    assert (meta.title, meta.source, meta.license, meta.language) == (
        per_version["versionTitle"], per_version["versionSource"], per_version["license"], "he")
    merged = _load(shared_dir / "sefaria-api/examples/export/json/Tanakh/Prophets/Obadiah/English/merged.json")
    meta = version_meta(merged)
    assert meta.title == merged["versions"][0][0] and meta.source == merged["versions"][0][1]
    assert meta.license == "unknown" and meta.version_title == meta.title
    with pytest.raises(MalformedResponse):
        version_meta({**merged, "versions": []})
    with pytest.raises(MalformedResponse):
        version_meta({"versionTitle": "x", "text": []})


def test_title_lookup(tree):
    assert tree.resolve("Bereshit") == "Genesis"
    assert tree.resolve("בראשית") == "Genesis"
    assert tree.resolve("rashi_on_genesis") == "Rashi on Genesis"
    with pytest.raises(UnknownBook):
        tree.book("Not a Book")
    with pytest.raises(UnknownBook):
        tree.index("Torah")


def test_toc_books_carry_modern_fields(tree):
    books = {b["title"]: b for b in _toc_books(tree.toc())}
    rashi = books["Rashi on Genesis"]
    assert rashi["categories"] == ["Tanakh", "Rishonim on Tanakh", "Rashi", "Torah"]
    assert rashi["dependence"] == "Commentary" and rashi["base_text_titles"] == ["Genesis"]
    for b in books.values():
        assert {"title", "heTitle", "categories", "primary_category", "order"} <= set(b)
        assert b["primary_category"] == b["categories"][0]
        assert isinstance(b["order"], int)


def test_modern_tree_passes_through(tmp_path, shared_dir):
    """A tree in today's layout (per-version files beside merged.json, v2 schemas) is read as is."""
    src = shared_dir / "sefaria-api/examples/export"
    book = tmp_path / "json/Tanakh/Prophets/Obadiah"
    (book / "Hebrew").mkdir(parents=True)
    (book / "English").mkdir(parents=True)
    (tmp_path / "schemas").mkdir()
    for rel in ["json/Tanakh/Prophets/Obadiah/Hebrew/Tanach with Ta'amei Hamikra.json",
                "json/Tanakh/Prophets/Obadiah/Hebrew/merged.json",
                "json/Tanakh/Prophets/Obadiah/English/merged.json", "schemas/Obadiah.json"]:
        os.symlink(src / rel, tmp_path / rel)
    modern = ExportTree(tmp_path)
    assert modern.titles() == ["Obadiah"]
    original = _load(src / "schemas/Obadiah.json")
    idx = modern.index("Obadiah")
    assert idx["categories"] == original["categories"] == ["Tanakh", "Prophets"]
    assert idx["schema"]["addressTypes"] == original["schema"]["addressTypes"]
    assert idx["schema"]["lengths"][0] == original["schema"]["lengths"][0]
    he, en = modern.versions("Obadiah")
    assert he.versionTitle == "Tanach with Ta'amei Hamikra" and he.license == "Public Domain"
    assert he.priority == 1.0
    assert en.versionTitle == "THE JPS TANAKH: Gender-Sensitive Edition"
