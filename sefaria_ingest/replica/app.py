"""The replica's aiohttp application: Sefaria's API routes and export bucket over a local export tree."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Iterable

from aiohttp import web

from ..errors import UnknownBook
from ..export_tree import ExportTree
from . import jagged
from .faults import FAULTS, Faults, FaultSpec, faults_route
from .stats import CONTROL_PREFIX, Stats, stats_middleware
from .store import Library, RefError
from .texts import v3_texts, version_metadata

LIBRARY = web.AppKey("library", Library)
STATS = web.AppKey("stats", Stats)
EXPORT_FILES = web.AppKey("export_files", dict)


def json_response(data, status: int = 200, callback: str | None = None) -> web.Response:
    """JSON exactly as Sefaria's jsonResponse writes it (ensure_ascii=False, default separators); JSONP on request."""
    text = json.dumps(data, ensure_ascii=False)
    if callback:
        return web.Response(text=f"{callback}({text})", status=status, content_type="application/javascript",
                            charset="utf-8")
    return web.Response(body=text.encode("utf-8"), status=status, content_type="application/json", charset="utf-8")


def _legacy(request: web.Request, data, status: int = 200) -> web.Response:
    return json_response(data, status, request.query.get("callback"))


# --- API routes --------------------------------------------------------------------------------------


async def toc(request: web.Request) -> web.Response:
    return _legacy(request, request.app[LIBRARY].tree.toc())


async def index_titles(request: web.Request) -> web.Response:
    tree = request.app[LIBRARY].tree
    names: list[str] = []
    for title in tree.titles():
        idx = tree.index(title, with_lengths=False)
        names.extend(dict.fromkeys([*idx.get("titleVariants", ()), title]))
    return _legacy(request, {"books": names})


def _index_route(raw: bool):
    async def handler(request: web.Request) -> web.Response:
        tree = request.app[LIBRARY].tree
        name = request.match_info["title"].replace("_", " ")
        try:
            title = tree.resolve(name)
        except UnknownBook:
            shown = name[:1].upper() + name[1:]
            return _legacy(request, {"error": f"No book named '{shown}'."})
        return _legacy(request, tree.raw_index(title) if raw else tree.index(title))

    return handler


async def texts_v3(request: web.Request) -> web.Response:
    lib = request.app[LIBRARY]
    try:
        body = v3_texts(lib, request.match_info["tref"], request.query.getall("version", []),
                        request.query.get("return_format", "default"))
    except RefError as exc:
        return json_response({"error": exc.message}, exc.status)
    return json_response(body)


async def texts_versions(request: web.Request) -> web.Response:
    lib = request.app[LIBRARY]
    try:
        loc = lib.locate(request.match_info["tref"])
    except RefError as exc:
        return _legacy(request, {"error": exc.message})
    out = []
    for v in loc.book.versions:
        if not (loc.book_level or lib.has_text(loc, v)):
            continue
        item = version_metadata(v, with_title=True)
        if loc.book_level:
            first = lib.first_section(loc.book, loc.book.root, v)
            item["firstSectionRef"] = first.normal() if first else loc.ref.normal()
        out.append(item)
    return _legacy(request, out)


async def shape(request: web.Request) -> web.Response:
    lib = request.app[LIBRARY]
    name = request.match_info["title"].replace("_", " ")
    found = lib.node(name)
    if found is not None:
        book, node = found
        shapes = [_leaf_shape(lib, book, leaf) for leaf in node.leaves()]
    else:
        path = name.split("/")
        dependents = request.query.get("dependents", "") not in ("", "0", "false", "False")
        titles: list[str] | None = []
        if len(path) == 1:  # a corpus: every book whose first category it is
            titles = [t for t in lib.titles() if lib.tree.book(t).categories[:1] == path
                      and (dependents or not lib.tree.book(t).base_title)]
        if not titles:
            titles = lib.books_in_category(path, dependents)
        if titles is None:
            return _legacy(request, {"error": f"No index or category found to match {name}"})
        shapes = []
        for title in titles:
            book = lib.book(title)
            shapes.extend(_leaf_shape(lib, book, leaf) for leaf in book.leaves)
    return _legacy(request, _collapse(shapes))


def _leaf_shape(lib: Library, book, leaf) -> dict:
    counts = jagged.shape([book.text(leaf, v) for v in book.versions], leaf.depth)
    return {"section": book.index["categories"][-1], "heTitle": leaf.he_title, "title": leaf.en_title,
            "length": len(counts) if isinstance(counts, list) else 1, "chapters": counts,
            "book": book.title, "heBook": book.index.get("heTitle", "")}


def _collapse(shapes: list[dict]) -> list[dict]:
    """One entry per book: a complex book's leaves go into one `isComplex` entry (as shape_api does)."""
    out: list[dict] = []
    for s in shapes:
        last = out[-1] if out else None
        if last is not None and last["book"] == s["book"]:
            if not last.get("isComplex"):
                last = {"isComplex": True, "section": last["section"], "length": last["length"], "chapters": [last],
                        "book": last["book"], "heBook": last["heBook"]}
                out[-1] = last
            last["chapters"].append(s)
            last["length"] += s["length"]
        else:
            out.append(s)
    return out


# --- the export bucket -------------------------------------------------------------------------------


def export_files(tree: ExportTree) -> dict[str, tuple[str, str]]:
    """Bucket path -> (kind, what): the tree laid out as today's export (modern categories and titles)."""
    files: dict[str, tuple[str, str]] = {"table_of_contents.json": ("toc", "")}
    if (tree.root / "last_export.txt").exists():
        files["last_export.txt"] = ("file", "last_export.txt")
    for title in tree.titles():
        entry = tree.book(title)
        files[f"schemas/{title.replace(' ', '_')}.json"] = ("schema", title)
        for paths in entry.files.values():
            for rel in paths:
                files[entry.modern_file(rel)] = ("file", rel)
    return files


async def export(request: web.Request) -> web.Response:
    lib = request.app[LIBRARY]
    files = request.app[EXPORT_FILES]
    if not files:
        files.update(export_files(lib.tree))
    found = files.get(request.match_info["path"])
    if found is None:
        return web.Response(status=404, text="NoSuchKey", content_type="text/plain")
    kind, what = found
    if kind == "toc":
        return json_response(lib.tree.toc())
    if kind == "schema":
        return json_response(lib.tree.index(what))
    body = await asyncio.to_thread(lib.tree.path(what).read_bytes)
    content_type = "application/json" if what.endswith(".json") else "text/plain"
    return web.Response(body=body, content_type=content_type, charset="utf-8")


# --- control -----------------------------------------------------------------------------------------


async def replica_stats(request: web.Request) -> web.Response:
    faults = request.app[FAULTS].snapshot()["injected"]
    return json_response(request.app[STATS].snapshot() | {"faults_injected": faults})


async def replica_reset(request: web.Request) -> web.Response:
    request.app[STATS].reset()
    request.app[FAULTS].reset_counts()
    return json_response({"reset": True})


def latency_middleware(latency_ms: float):
    """Every API and export request waits `latency_ms` first, like a far-away server (control routes do not)."""
    delay = latency_ms / 1000.0

    @web.middleware
    async def middleware(request: web.Request, handler):
        if not request.path.startswith(CONTROL_PREFIX):
            await asyncio.sleep(delay)
        return await handler(request)

    return middleware


def make_app(data_dir: str | os.PathLike, latency_ms: float = 0, *, middlewares: Iterable = (),
             preload: bool = False, faults: FaultSpec | None = None) -> web.Application:
    """The replica over an export tree. `middlewares` run inside the stats middleware; `faults` (also settable
    at run time through POST /_replica/faults) inside the latency, so faulty answers are as slow as good ones."""
    library = Library(ExportTree(data_dir))
    if preload:
        library.preload()
    stats = Stats()
    chain = [stats_middleware(stats), *middlewares]
    if latency_ms:
        chain.append(latency_middleware(latency_ms))
    injector = Faults(faults)
    chain.append(injector.middleware())
    app = web.Application(middlewares=chain)
    app[FAULTS] = injector
    app.on_shutdown.append(injector.on_shutdown)
    app[LIBRARY] = library
    app[STATS] = stats
    app[EXPORT_FILES] = {}
    r = app.router
    r.add_get("/api/index", toc, name="index")
    r.add_get("/api/index/titles", index_titles, name="index_titles")
    r.add_get("/api/index/{title:.+}", _index_route(raw=False), name="index_title")
    r.add_get("/api/v2/index/{title:.+}", _index_route(raw=False), name="v2_index")
    r.add_get("/api/v2/raw/index/{title:.+}", _index_route(raw=True), name="v2_raw_index")
    r.add_get("/api/shape/{title:.+}", shape, name="shape")
    r.add_get("/api/v3/texts/{tref:.+}", texts_v3, name="v3_texts")
    r.add_get("/api/texts/versions/{tref:.+}", texts_versions, name="texts_versions")
    r.add_get("/export/{path:.+}", export, name="export")
    r.add_get("/_replica/stats", replica_stats, name="replica_stats")
    r.add_post("/_replica/reset", replica_reset, name="replica_reset")
    r.add_get("/_replica/faults", faults_route, name="replica_faults")
    r.add_post("/_replica/faults", faults_route, name="replica_faults_set")
    return app
