"""`GET /api/v3/texts/{tref}`: version selection, warnings and the response body, as SPEC.md §4 describes."""

from __future__ import annotations

import html
import re

from ..export_tree import VERSION_OPTIONAL_FIELDS, VersionText
from ..refs import Ref, section_to_str
from . import jagged
from .store import COMPLEX_BOOK_LEVEL, Library, Located, RefError

RETURN_FORMATS = ["default", "wrap_all_entities", "text_only", "strip_only_footnotes"]
PRIMARY, SOURCE, TRANSLATION, ALL = "primary", "source", "translation", "all"

_FOOTNOTE = re.compile(r'<sup[^>]*class="footnote-marker"[^>]*>.*?</sup>\s*<i[^>]*class="footnote"[^>]*>.*?</i>', re.S)
_ITAG = re.compile(r"<i[^>]*data-commentator[^>]*>\s*</i>", re.S)
_TAG = re.compile(r"<[^>]+>")


def version_metadata(v: VersionText, *, with_title: bool) -> dict:
    """A version's metadata in the API's field order; attributes the file lacks are ""."""
    out = {"status": v.extra.get("status", ""), "priority": "" if v.priority is None else v.priority,
           "license": v.license}
    for name in VERSION_OPTIONAL_FIELDS[1:]:
        out[name] = v.extra.get(name, "")
    out["language"] = v.language
    if with_title:
        out["title"] = v.title
    out.update({"versionSource": v.versionSource, "versionTitle": v.versionTitle, "actualLanguage": v.actualLanguage,
                "languageFamilyName": v.languageFamilyName, "isSource": v.isSource, "isPrimary": v.isPrimary,
                "direction": v.direction})
    return out


def parse_version_params(values: list[str]) -> list[tuple[str, str]]:
    """`version` query values -> (language, versionTitle) pairs; `_` in a title means a space."""
    pairs = []
    for value in values or [PRIMARY]:
        lang, _, title = value.partition("|")
        pairs.append((lang, title.replace("_", " ")))
    return pairs


def select_versions(candidates: list[VersionText], params: list[tuple[str, str]]):
    """Chosen versions (each once) and the params nothing matched, per TextRequestAdapter."""
    chosen: list[VersionText] = []
    missing: list[tuple[str, str]] = []
    for lang, title in params:
        if lang == PRIMARY:
            match = [v for v in candidates if v.isPrimary]
        elif lang == SOURCE:
            match = [v for v in candidates if v.isSource]
        elif lang == TRANSLATION:
            match = [v for v in candidates if not v.isSource]
        elif lang:
            match = [v for v in candidates if v.languageFamilyName.lower() == lang]
        else:
            match = list(candidates)
        if title and title != ALL:
            match = [v for v in match if v.versionTitle == title]
        elif title != ALL and match:
            match = [max(match, key=lambda v: v.priority or 0)]
        for v in match:
            if v not in chosen:
                chosen.append(v)
        if not match:
            missing.append((lang, title))
    return chosen, missing


def warning_for(lang: str, title: str, ref: str, available_langs: list[str]) -> dict:
    if lang == SOURCE:
        body = {"warning_code": 103, "message": f"We do not have the source text for {ref}"}
    elif lang == TRANSLATION:
        body = {"warning_code": 104, "message": f"We do not have a translation for {ref}"}
    elif title and title != ALL:
        body = {"warning_code": 101, "message": f"We do not have version named {title} with language {lang} for {ref}"}
    else:
        body = {"warning_code": 102,
                "message": f"We do not have the language you asked for {ref}. Available languages are {available_langs}"}
    return {f"{lang}|{title}" if title else lang: body}


def text_only(s: str) -> str:
    """return_format=text_only: no footnotes, no inline commentator markers, no HTML, single spaces."""
    s = _ITAG.sub("", _FOOTNOTE.sub("", s))
    return " ".join(html.unescape(_TAG.sub(" ", s)).split())


def strip_footnotes(s: str) -> str:
    return " ".join(_ITAG.sub("", _FOOTNOTE.sub("", s)).split())


def v3_texts(lib: Library, tref: str, version_values: list[str], return_format: str) -> dict:
    """The v3 response body; raises RefError for the API's 400/404 answers."""
    loc = lib.locate(tref)
    ref = loc.ref.normal()
    candidates = [v for v in loc.book.versions if lib.has_text(loc, v)]
    if not candidates:
        raise RefError(404, f"We have no text for {ref}.")
    if return_format not in RETURN_FORMATS:
        raise RefError(400, f"return_format should be one of those formats: {RETURN_FORMATS}.")
    if loc.node.children:
        raise RefError(400, COMPLEX_BOOK_LEVEL.format(ref=ref))
    chosen, missing = select_versions(candidates, parse_version_params(version_values))
    convert = {"text_only": text_only, "strip_only_footnotes": strip_footnotes}.get(return_format)
    versions = []
    for v in chosen:
        item = version_metadata(v, with_title=False)
        text = lib.text(loc, v)
        item["text"] = jagged.map_strings(text, convert) if convert else text
        if loc.book_level:
            first = lib.first_section(loc.book, loc.node, v)
            item["firstSectionRef"] = first.normal() if first else ref
        versions.append(item)
    available_langs = sorted({v.languageFamilyName for v in candidates})
    body = {"versions": versions,
            "available_versions": [version_metadata(v, with_title=True) for v in candidates]}
    body.update(_ref_data(lib, loc))
    body.update(_index_data(loc))
    body.update(_node_data(loc))
    body["warnings"] = [warning_for(lang, title, ref, available_langs) for lang, title in missing]
    return body


def _ref_data(lib: Library, loc: Located) -> dict:
    ref = loc.ref
    types = loc.node.address_types
    section = _section_ref(loc)
    spanning = _is_spanning(loc)
    nxt, prv = lib.next_prev(loc)
    if ref.sections:
        first_available = ref.normal()
    else:
        first = lib.first_section(loc.book, loc.node)
        first_available = first.normal() if first else ref.normal()
    out = {
        "ref": ref.normal(),
        "heRef": ref.he(),
        "sections": [section_to_str(n, t) for n, t in zip(ref.sections, types)],
        "toSections": [section_to_str(n, t) for n, t in zip(loc.to_sections, types)],
        "sectionRef": section.normal(),
        "heSectionRef": section.he(),
        "firstAvailableSectionRef": first_available,
        "isSpanning": spanning,
    }
    if spanning:
        out["spanningRefs"] = lib.spanning_refs(loc)
    out.update({"next": nxt, "prev": prv, "title": section.normal(), "book": loc.book.title,
                "heTitle": section.he(), "primary_category": loc.book.index["categories"][0],
                "type": loc.book.index["categories"][0]})
    return out


def _section_ref(loc: Located) -> Ref:
    """The section a segment-level ref lies in (a depth-1 node's segment: the whole node); else the ref."""
    ref, depth = loc.ref, loc.node.depth
    if len(ref.sections) < depth:
        return ref
    to = ref.to_sections[:-1] if ref.to_sections else ()
    return loc.node.ref(ref.sections[:-1], to if to != ref.sections[:-1] else ())


def _is_spanning(loc: Located) -> bool:
    """A range crossing a section boundary (Genesis 1:31-2:2, Genesis 1-2), as Ref.is_spanning()."""
    start, end = loc.sections, loc.to_sections
    if not loc.ref.to_sections or start == end:
        return False
    split = next(i for i, (a, b) in enumerate(zip(start, end)) if a != b)
    return split < loc.node.depth - 1


def _index_data(loc: Located) -> dict:
    index = loc.book.index
    collective = index.get("collective_title") or {}
    return {
        "indexTitle": index["title"],
        "categories": list(index["categories"]),
        "heIndexTitle": index.get("heTitle", ""),
        "isComplex": loc.book.is_complex,
        "isDependant": bool(index.get("dependence")),
        "order": index.get("order", ""),
        "collectiveTitle": collective.get("en", "") if isinstance(collective, dict) else collective,
        "heCollectiveTitle": collective.get("he", "") if isinstance(collective, dict) else "",
        "alts": [],
    }


def _node_data(loc: Located) -> dict:
    node = loc.node
    out: dict = {}
    if node.lengths:
        out["lengths"] = list(node.lengths)
        out["length"] = node.lengths[0]
    en_titles, he_titles = _title_variants(loc)
    out.update({
        "textDepth": node.depth,
        "sectionNames": list(node.section_names),
        "addressTypes": list(node.address_types),
        "heTitle": node.he_title,
        "titleVariants": en_titles,
        "heTitleVariants": he_titles,
        "index_offsets_by_depth": {},
    })
    return out


def _title_variants(loc: Located) -> tuple[list[str], list[str]]:
    node, index = loc.node, loc.book.index
    if node.en_title == index["title"]:
        return list(index.get("titleVariants") or [node.en_title]), list(index.get("heTitleVariants") or [node.he_title])
    parent_en, parent_he = node.en_title.rsplit(", ", 1)[0], node.he_title.rsplit(", ", 1)[0]
    en = [f"{parent_en}, {t['text']}" for t in node.titles if t.get("lang") == "en" and t.get("text")]
    he = [f"{parent_he}, {t['text']}" for t in node.titles if t.get("lang") == "he" and t.get("text")]
    return en or [node.en_title], he or [node.he_title]
