"""The replica's routes, refs, version forms, errors, stats and CLI, checked against the sample files."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from sefaria_ingest.replica import ReplicaThread

REPO = Path(__file__).resolve().parents[1]


def _load(path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def genesis(sample_dir):
    return {lang: _load(sample_dir / f"json/Tanach/Torah/Genesis/{d}/merged.json")
            for lang, d in (("he", "Hebrew"), ("en", "English"))}


@pytest.fixture(scope="module")
def berakhot(sample_dir):
    return {lang: _load(sample_dir / f"json/Talmud/Bavli/Seder Zeraim/Berakhot/{d}/merged.json")
            for lang, d in (("he", "Hebrew"), ("en", "English"))}


def texts(get, tref, *versions, **params):
    query = [("version", v) for v in versions] + list(params.items())
    return get(f"/api/v3/texts/{tref}", query)


def by_lang(body) -> dict:
    return {v["language"]: v for v in body["versions"]}


# --- v3 texts ------------------------------------------------------------------------------------------


def test_segment_section_and_range_shapes(replica_get, genesis):
    he = genesis["he"]["text"]
    r = texts(replica_get, "Genesis 1:1")
    assert r.status == 200
    body = r.json()
    assert body["versions"][0]["text"] == he[0][0]
    assert body["sections"] == ["1", "1"] and body["toSections"] == ["1", "1"]
    assert (body["next"], body["prev"], body["sectionRef"]) == ("Genesis 2", None, "Genesis 1")
    assert texts(replica_get, "Genesis 3").json()["versions"][0]["text"] == he[2]
    assert texts(replica_get, "Genesis 3:4-8").json()["versions"][0]["text"] == he[2][3:8]
    spanning = texts(replica_get, "Genesis 1:31-2:2").json()
    assert spanning["versions"][0]["text"] == [he[0][30:], he[1][:2]]
    assert spanning["isSpanning"] is True
    assert spanning["spanningRefs"] == ["Genesis 1:31", "Genesis 2:1-2"]
    assert spanning["sectionRef"] == "Genesis 1-2" and spanning["toSections"] == ["2", "2"]


def test_talmud_refs(replica_get, berakhot):
    body = texts(replica_get, "Berakhot 2a:3").json()
    assert body["versions"][0]["text"] == berakhot["he"]["text"][2][2]
    assert body["sections"] == ["2a", "3"] and body["heRef"] == "ברכות ב׳ א:ג׳"
    same = texts(replica_get, "Berakhot.2a.3").json()
    assert same["ref"] == "Berakhot 2a:3"
    daf = texts(replica_get, "Berakhot 2b", "english").json()
    assert daf["versions"][0]["text"] == berakhot["en"]["text"][3]
    assert (daf["prev"], daf["next"]) == ("Berakhot 2a", "Berakhot 3a")
    first = texts(replica_get, "Berakhot 2a").json()
    assert first["prev"] is None  # 1a and 1b are empty


def _walk(get, start, direction):
    refs, ref = [], start
    while ref is not None:
        refs.append(ref)
        body = texts(get, ref).json()
        ref = body[direction]
        assert len(refs) < 500
    return refs


def test_next_prev_chains_cover_every_section(replica_get, genesis, berakhot):
    forward = _walk(replica_get, "Genesis 1", "next")
    assert forward == [f"Genesis {i}" for i in range(1, len(genesis["he"]["text"]) + 1)]
    assert _walk(replica_get, forward[-1], "prev") == forward[::-1]
    with_text = [i for i, daf in enumerate(berakhot["he"]["text"]) if any(s.strip() for s in daf)]
    chain = _walk(replica_get, "Berakhot 2a", "next")
    assert len(chain) == len(with_text)
    assert chain[-1] == "Berakhot 64a"


def test_next_crosses_leaf_nodes_in_schema_order(replica_get, sample_dir):
    schema = _load(sample_dir / "schemas/Pesach_Haggadah.json")["schema"]

    def leaves(node, prefix):
        for child in node["nodes"]:
            title = f"{prefix}, {child['title']}"
            yield from leaves(child, title) if child.get("nodes") else [title]

    expected = list(leaves(schema, "Pesach Haggadah"))
    chain = _walk(replica_get, expected[0], "next")
    with_text = [t for t in expected if texts(replica_get, t).status == 200]
    assert chain == with_text and len(chain) > 30


def test_whole_book_and_whole_node(replica_get, genesis, sample_dir):
    body = texts(replica_get, "Genesis", "hebrew").json()
    assert body["versions"][0]["text"] == genesis["he"]["text"]
    assert body["next"] == "Genesis 1" and body["sections"] == []
    assert body["versions"][0]["firstSectionRef"] == "Genesis 1"
    haggadah = _load(sample_dir / "json/Liturgy/Pesach Haggadah/Hebrew/merged.json")["text"]
    node = texts(replica_get, "Pesach Haggadah, Magid, Ha Lachma Anya").json()
    assert node["versions"][0]["text"] == haggadah["Magid"]["Ha Lachma Anya"]
    assert node["isComplex"] is True and node["book"] == "Pesach Haggadah"
    assert node["heTitle"] == "הגדה של פסח, מגיד, הא לחמא עניא"
    seg = texts(replica_get, "Pesach_Haggadah,_Magid,_Ha_Lachma_Anya.2").json()
    assert seg["versions"][0]["text"] == haggadah["Magid"]["Ha Lachma Anya"][1]
    tanya = _load(sample_dir / "json/Chasidut/Tanya/Hebrew/merged.json")["text"]
    default = texts(replica_get, "Tanya, Part Two, The Gateway of Unity and Belief 3:1").json()
    assert default["versions"][0]["text"] == tanya["Part Two, The Gateway of Unity and Belief"][""][2][0]


def test_errors(replica_get):
    r = texts(replica_get, "__no_such_book__")
    assert (r.status, r.json()) == (404, {"error": "Could not find title in reference:   no such book  "})
    r = texts(replica_get, "Genesis 51")
    assert (r.status, r.json()) == (404, {"error": "Genesis ends at Chapter 50."})
    r = texts(replica_get, "Genesis 1:40")
    assert (r.status, r.json()) == (404, {"error": "We have no text for Genesis 1:40."})
    r = texts(replica_get, "Genesis 1:1", return_format="html")
    assert r.status == 400 and r.json()["error"].startswith("return_format should be one of those formats: [")
    r = texts(replica_get, "Pesach Haggadah")
    assert r.status == 400
    assert r.json()["error"].startswith("You passed 'Pesach Haggadah', please pass a more specific ref")


def test_version_forms(replica_get, genesis):
    he_title = genesis["he"]["versions"][0][0]
    en_title = genesis["en"]["versions"][0][0]
    cases = {
        (): ["he"], ("primary",): ["he"], ("source",): ["he"], ("translation",): ["en"],
        ("english",): ["en"], ("hebrew",): ["he"], (f"hebrew|{he_title}",): ["he"],
        ("english|all",): ["en"], ("hebrew", "english", "hebrew"): ["he", "en"],
        (f"english|{en_title.replace(' ', '_')}",): ["en"],
    }
    for versions, langs in cases.items():
        body = texts(replica_get, "Genesis 1:1", *versions).json()
        assert [v["language"] for v in body["versions"]] == langs, versions
        assert body["warnings"] == [], versions
    assert {v["versionTitle"] for v in texts(replica_get, "Genesis 1:1", "english").json()["versions"]} == {en_title}


def test_missing_versions_warn(replica_get):
    body = texts(replica_get, "Genesis 1:1", "hebrew", "english|No Such Version").json()
    assert [v["language"] for v in body["versions"]] == ["he"]
    assert body["warnings"] == [{"english|No Such Version": {
        "warning_code": 101, "message": "We do not have version named No Such Version with language english for Genesis 1:1"}}]
    body = texts(replica_get, "Genesis 1:1", "finnish").json()
    assert body["versions"] == []
    assert body["warnings"][0]["finnish"]["warning_code"] == 102
    assert "['english', 'hebrew']" in body["warnings"][0]["finnish"]["message"]
    r = texts(replica_get, "Tanya, Introduction 1", "translation")
    assert r.status == 200 and r.json()["warnings"][0]["translation"]["warning_code"] == 104
    r = texts(replica_get, "Ben Ish Hai, Noakh 1", "source")  # only an English text there
    assert r.json()["warnings"][0]["source"]["warning_code"] == 103


def test_text_only_strips_html(replica_get, berakhot):
    raw = berakhot["en"]["text"][2][0]
    assert "<b>" in raw
    body = texts(replica_get, "Berakhot 2a:1", "english", return_format="text_only").json()
    expected = " ".join(re.sub(r"<[^>]+>", " ", raw).split())
    assert body["versions"][0]["text"] == expected


# --- other routes --------------------------------------------------------------------------------------


def test_index_routes(replica_get, sample_dir):
    toc = replica_get("/api/index")
    assert toc.status == 200 and isinstance(toc.json(), list)
    assert toc.headers["Content-Type"] == "application/json; charset=utf-8"
    v2 = replica_get("/api/v2/index/Rashi_on_Genesis").json()
    assert v2["title"] == "Rashi on Genesis" and v2["schema"]["depth"] == 3
    assert replica_get("/api/v2/index/בראשית").json()["title"] == "Genesis"
    raw = replica_get("/api/v2/raw/index/Genesis").json()
    assert "heTitle" not in raw and raw["schema"]["key"] == "Genesis"
    missing = replica_get("/api/v2/index/no_such_book")
    assert (missing.status, missing.json()) == (200, {"error": "No book named 'No such book'."})
    assert replica_get("/api/v2/raw/index/Nothing").json() == {"error": "No book named 'Nothing'."}


def test_shape_routes(replica_get, genesis):
    shape = replica_get("/api/shape/Genesis").json()
    assert shape[0]["chapters"] == [len(c) for c in genesis["he"]["text"]]
    torah = replica_get("/api/shape/Tanakh/Torah").json()
    assert [s["book"] for s in torah] == ["Genesis", "Exodus"]
    complex_ = replica_get("/api/shape/Pesach Haggadah").json()
    assert len(complex_) == 1 and complex_[0]["isComplex"] is True
    assert complex_[0]["length"] == len(complex_[0]["chapters"])
    err = replica_get("/api/shape/Torah")
    assert (err.status, err.json()) == (200, {"error": "No index or category found to match Torah"})


def test_versions_route(replica_get, genesis):
    versions = replica_get("/api/texts/versions/Genesis").json()
    assert [(v["language"], v["versionTitle"]) for v in versions] == [
        ("he", genesis["he"]["versions"][0][0]), ("en", genesis["en"]["versions"][0][0])]
    assert all(v["title"] == "Genesis" and v["firstSectionRef"] == "Genesis 1" for v in versions)
    err = replica_get("/api/texts/versions/__nothing__")
    assert (err.status, err.json()) == (200, {"error": "Could not find title in reference:   nothing  "})


def test_export_bucket(replica_get, sample_dir):
    path = "json/Tanach/Torah/Genesis/Hebrew/merged.json"
    r = replica_get("/export/json/Tanakh/Torah/Genesis/Hebrew/merged.json")
    assert r.status == 200 and r.body == (sample_dir / path).read_bytes()
    assert replica_get("/export/json/Tanach/Torah/Genesis/Hebrew/merged.json").status == 404
    r = replica_get("/export/json/Tanakh/Rishonim on Tanakh/Rashi/Torah/Rashi on Genesis/English/merged.json")
    assert r.status == 200
    schema = replica_get("/export/schemas/Rashi_on_Genesis.json").json()
    assert schema == replica_get("/api/v2/index/Rashi on Genesis").json()
    assert replica_get("/export/table_of_contents.json").json() == replica_get("/api/index").json()


# --- stats, latency, CLI -------------------------------------------------------------------------------


async def _burst(url: str, n: int) -> list[bytes]:
    async with aiohttp.ClientSession() as session:
        async def one(i):
            async with session.get(f"{url}/api/v3/texts/Genesis.{i + 1}.1") as resp:
                assert resp.status == 200
                return await resp.read()
        return await asyncio.gather(*(one(i) for i in range(n)))


def test_stats_count_what_clients_did(sample_dir, http):
    with ReplicaThread(sample_dir, latency_ms=300) as url:
        assert http(url, "/_replica/reset", method="POST").status == 200
        t0 = time.monotonic()
        bodies = asyncio.run(_burst(url, 12))
        elapsed = time.monotonic() - t0
        http(url, "/api/v3/texts/Nowhere 1")
        stats = http(url, "/_replica/stats").json()
    assert elapsed >= 0.3  # every request waited the added latency
    assert stats["requests_total"] == 13
    assert stats["requests_by_route"] == {"v3_texts": {"200": 12, "404": 1}}
    assert stats["peak_in_flight"] == 12
    assert 12 <= stats["peak_requests_per_second"] <= 13  # the burst arrived within one second
    assert stats["bytes_sent"] >= sum(len(b) for b in bodies)
    assert sum(stats["requests_per_second"]) == 13
    assert stats["in_flight"] == 0


def test_stats_reset(replica_get):
    replica_get("/_replica/reset", method="POST")
    replica_get("/api/index")
    replica_get("/api/shape/Torah")
    stats = replica_get("/_replica/stats").json()
    assert stats["requests_by_route"] == {"index": {"200": 1}, "shape": {"200": 1}}
    replica_get("/_replica/reset", method="POST")
    assert replica_get("/_replica/stats").json()["requests_total"] == 0


def test_cli_prints_listening_line_and_stops_on_sigterm(sample_dir, http):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sefaria_ingest.replica", "--data", str(sample_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        line = proc.stdout.readline().strip()
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))", line)
        assert m, line
        assert http(m.group(1), "/api/v3/texts/Genesis 1:1").status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_extra_middleware_slots_inside_the_stats(sample_dir):
    """A fault-injecting middleware (a later issue) runs inside the stats one, so its answers are counted."""
    from aiohttp import web

    from sefaria_ingest.replica import run_replica

    @web.middleware
    async def unavailable(request, handler):
        if "Exodus" in request.path:
            return web.json_response({"error": "injected"}, status=503)
        return await handler(request)

    async def scenario():
        async with run_replica(sample_dir, middlewares=[unavailable]) as url:
            async with aiohttp.ClientSession() as session:
                for ref in ("Exodus.1.1", "Genesis.1.1"):
                    async with session.get(f"{url}/api/v3/texts/{ref}") as resp:
                        await resp.read()
                async with session.get(f"{url}/_replica/stats") as resp:
                    return await resp.json()

    stats = asyncio.run(scenario())
    assert stats["requests_by_route"] == {"v3_texts": {"200": 1, "503": 1}}


def test_jsonp_and_titles(replica_get):
    r = replica_get("/api/shape/Torah", {"callback": "cb"})
    assert r.headers["Content-Type"].startswith("application/javascript")
    assert r.body.decode() == 'cb({"error": "No index or category found to match Torah"})'
    titles = replica_get("/api/index/titles").json()["books"]
    assert {"Genesis", "Bereshit", "Rashi on Genesis", "Chofetz Chaim"} <= set(titles)
