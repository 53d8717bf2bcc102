"""The workflow's reliability guarantees, end to end with the real `snakemake` against the local replica.

1. Under a fault matrix (5xx, 429, timeouts, resets, truncated bodies) a run completes with results identical
   to a fault-free run.
2. SIGKILL of the whole snakemake tree at random moments, then a plain rerun: identical results, no partial file,
   no duplicate or missing chunk in either index.
3. A book that fails for good fails alone, is named with its cause, and a rerun fetches only that book.
4. Bad input stops with one clear line and damages nothing else.
5. A rerun after success runs nothing, even after a raw file is touched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import orjson
import pytest
import yaml
from aiohttp import web

from sefaria_ingest.config import ConfigError, validate_config
from sefaria_ingest.errors import IngestError
from sefaria_ingest.fetch import write_book
from sefaria_ingest.index.fulltext import open_backend
from sefaria_ingest.records import Chunk, Segment
from sefaria_ingest.replica import ReplicaThread
from sefaria_ingest.replica.faults import FaultSpec
from sefaria_ingest.search import search
from sefaria_ingest.sources import BookFetch

from .reliability_helpers import (ENGLISH_EMBED, NO_EMBED, RequestLog, fast_config, jsonl_records, kill_tree,
                                  replica_call, slug, start_snakemake, tantivy_ids, temp_files, tree_bytes,
                                  vector_meta_ids, wait_until)
from .workflow_helpers import ROOT, executed_jobs, run_snakemake

BOOKS = ["Jonah", "Ruth", "Pesach Haggadah"]  # Pesach Haggadah: 38 leaf nodes, so many requests
PER_BOOK_RULES = {"fetch", "chunk", "embed", "fulltext"}
AGGREGATE_RULES = {"vector_index", "fetch_stats", "benchmark_table", "plots", "all"}


def failure_lines(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("sefaria-ingest: FAILED")]


def failed_json(work: Path) -> list[dict]:
    return orjson.loads((work / "results" / "failed.json").read_bytes())


def outputs_of(work: Path, stage: str, books: list[str]) -> dict[str, bytes]:
    return {title: (work / "results" / stage / f"{slug(title)}.jsonl").read_bytes() for title in books}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, replica):
    """One uninterrupted, fault-free run over BOOKS: what every other run must reproduce byte for byte."""
    work = tmp_path_factory.mktemp("reference")
    config = fast_config(work, replica, BOOKS)
    run = run_snakemake(work, config, "--cores", "2")
    assert run.returncode == 0, run.stderr[-4000:]
    return work, config


def copy_run(reference: tuple[Path, Path], dest: Path) -> tuple[Path, Path]:
    """A copy of the reference run's directory (results, logs, Snakemake's metadata), to damage freely."""
    work, _ = reference
    shutil.copytree(work, dest, symlinks=True)
    return dest, dest / "test-config.yaml"


# ---- 1. the fault matrix ----

# The replica draws one fault per request from a seeded sequence, so a seed fixes which faults a run meets. This
# one's draws hold every kind (500, 502 and 503 too) for any run of 40 to 70 requests (this one makes about 50);
# the injected counts are asserted, so a change that loses a kind fails loudly instead of testing less.
MATRIX_SEED = 40
MATRIX = FaultSpec(rate_5xx=0.10, rate_429=0.05, rate_timeout=0.02, rate_reset=0.02, rate_truncate=0.01,
                   seed=MATRIX_SEED, slow_seconds=5.0, retry_after=0.5)


@pytest.mark.slow
def test_fault_matrix_run_is_identical_to_a_fault_free_run(reference, sample_dir, tmp_path):
    with ReplicaThread(sample_dir, faults=MATRIX) as url:
        config = fast_config(tmp_path, url, BOOKS)
        run = run_snakemake(tmp_path, config, "--cores", "2")
        injected = replica_call(url, "/_replica/stats")["faults_injected"]
    assert run.returncode == 0, run.stderr[-4000:]
    assert {"429", "timeout", "reset", "truncate"} <= set(injected), injected
    assert {"500", "502", "503"} <= set(injected), injected
    ref_work, _ = reference
    for stage in ("raw", "chunks"):
        assert tree_bytes(tmp_path / "results" / stage) == tree_bytes(ref_work / "results" / stage), stage
    # Every fault was absorbed by the client's retries inside one job: no job needed Snakemake's own retry.
    jobs = Counter(executed_jobs(run.stdout + run.stderr))
    assert all(jobs[("fetch", slug(t))] == 1 for t in BOOKS), jobs
    retries = sum(orjson.loads((tmp_path / "results" / "stats" / "fetch" / f"{slug(t)}.json").read_bytes())["retries"]
                  for t in BOOKS)
    assert retries > 0
    assert failed_json(tmp_path) == [] and not failure_lines(run)


# ---- 2. kill and resume ----

_INDEX_JOB = re.compile(rb"^(?:local)?rule (?:fulltext|vector_index):$", re.M)


def _kill_phases(rng: random.Random, results: Path, stage: str) -> list[tuple[str, Callable[[Path], bool], float]]:
    """Where to kill, each a condition on the results and the run's log, and a random wait after it holds:
    just after the catalog checkpoint, in the middle of an atomic write into results/`stage`, after an index
    job (full text or vectors) started."""
    watched = results / stage

    def catalog_written(log: Path) -> bool:
        return (results / "catalog.json").exists()

    def mid_write(log: Path) -> bool:
        # An atomic write's temp file exists only between its first byte and its rename.
        with contextlib.suppress(FileNotFoundError):
            return any(e.name.endswith(".tmp") for e in os.scandir(watched))
        return False

    def indexing(log: Path) -> bool:
        return bool(_INDEX_JOB.search(log.read_bytes()))

    return [("after the catalog", catalog_written, rng.uniform(0.0, 0.3)),
            (f"mid-write in {watched.name}/", mid_write, 0.0),
            ("while indexing", indexing, rng.uniform(0.0, 0.3))]


@pytest.mark.slow
@pytest.mark.parametrize("seed, embed, stage", [(1, ENGLISH_EMBED, "vectors"), (2, NO_EMBED, "chunks"),
                                                (3, NO_EMBED, "raw")],
                         ids=["seed1-english-vectors", "seed2-chunks", "seed3-raw"])
def test_killed_runs_resume_to_identical_outputs(reference, replica, tmp_path, seed, embed, stage):
    books = ["Jonah", "Ruth"]
    config = fast_config(tmp_path, replica, books, embed=embed)
    results = tmp_path / "results"
    kills = []
    for n, (phase, reached, extra) in enumerate(_kill_phases(random.Random(seed), results, stage)):
        log = tmp_path / f"killed-{n}.log"
        proc = start_snakemake(tmp_path, config, "--cores", "2", log_name=log.name)
        if wait_until(lambda: reached(log), proc, timeout=120) and extra:
            time.sleep(extra)
        alive = proc.poll() is None
        kill_tree(proc)
        kills.append((phase, alive, [p.name for p in temp_files(results)]))
    assert kills[0][1], f"the first kill came after the run ended: {kills}"

    # A plain rerun finishes: no `--unlock`, no cleanup by hand.
    run = run_snakemake(tmp_path, config, "--cores", "2")
    assert run.returncode == 0, f"{kills}\n{run.stderr[-4000:]}"

    ref_work, _ = reference
    for output in ("raw", "chunks"):
        assert outputs_of(tmp_path, output, books) == outputs_of(ref_work, output, books), (output, kills)
        visible = {p.name for p in (results / output).iterdir() if not p.name.startswith(".")}
        assert visible == {f"{slug(t)}.jsonl" for t in books}, visible
        # What a kill leaves behind is only ever a hidden temp file, never a file with an output's name.
        assert all(p.name.startswith(".") and p.name.endswith(".tmp")
                   for p in (results / output).iterdir() if p.name not in visible)
    english: set[str] = set()
    for title in books:
        chunks = jsonl_records(results / "chunks" / f"{slug(title)}.jsonl")
        jsonl_records(results / "raw" / f"{slug(title)}.jsonl")  # every line whole
        ids = tantivy_ids(results / "index" / "fulltext", title)
        assert len(ids) == len(set(ids)) == len(chunks), (title, len(ids), len(set(ids)), len(chunks))
        assert set(ids) == {c["id"] for c in chunks}
        done = orjson.loads((results / "fulltext" / f"{slug(title)}.done").read_bytes())
        assert done["documents"] == len(chunks)
        english |= {c["id"] for c in chunks if c["lang"] == "en"}
    vector_ids, count = vector_meta_ids(results / "index" / "vector")
    assert count == len(vector_ids)
    expected = english if embed["languages"] == ["en"] else set()
    assert len(vector_ids) == len(set(vector_ids)) and set(vector_ids) == expected
    hits = search(results, "Jonah was in the belly of the fish three days", k=3, mode="bm25")
    assert hits and hits[0].ref.startswith("Jonah 2")


_CLEAR = ("import sys, time\n"
          "from pathlib import Path\n"
          "from sefaria_ingest.workflow import clear_stale_locks\n"
          "print(len(clear_stale_locks(Path(sys.argv[1]))), flush=True)\n"
          "time.sleep(float(sys.argv[2]))\n")


def test_snakemake_locks_are_cleared_only_when_no_run_is_alive(tmp_path):
    """What lets a plain rerun start after a kill, without ever taking the locks of a run that is still going."""
    state = tmp_path / ".snakemake"
    (state / "locks").mkdir(parents=True)
    lock = state / "locks" / "0.output.lock"
    lock.write_text("results/catalog.json\n")

    def clear(hold: float) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _CLEAR, str(state), str(hold)], stdout=subprocess.PIPE,
                                text=True)

    alive = clear(120)  # a run that is going (it found and removed the dead run's lock)
    try:
        assert alive.stdout.readline().strip() == "1" and not lock.exists()
        lock.write_text("results/catalog.json\n")  # ...and took its own
        second = clear(0)
        assert second.stdout.readline().strip() == "0" and lock.exists()  # its lock is left alone
        second.wait(30)
    finally:
        alive.kill()
        alive.wait(30)
    third = clear(0)  # the first run died without cleaning up: now its lock is stale
    assert third.stdout.readline().strip() == "1" and not lock.exists()
    third.wait(30)


# ---- 3. only the failed book reruns ----

@pytest.mark.slow
def test_a_failing_book_fails_alone_and_the_rerun_fetches_only_it(reference, sample_dir, tmp_path):
    books = ["Jonah", "Ruth"]
    requests = RequestLog()
    with ReplicaThread(sample_dir, faults=FaultSpec(fail_books=("Ruth",)), middlewares=[requests.middleware()]) as url:
        config = fast_config(tmp_path, url, books, fetch={"retries": 2})
        first = run_snakemake(tmp_path, config, "--cores", "2")
        assert first.returncode != 0

        lines = failure_lines(first)
        assert len(lines) == 1 and lines[0].startswith("sefaria-ingest: FAILED fetch: Ruth: ") \
            and "HTTP 500" in lines[0], lines
        [record] = failed_json(tmp_path)
        assert (record["rule"], record["book"]) == ("fetch", "Ruth") and "HTTP 500" in record["cause"]
        assert "\n" not in record["cause"]
        assert "HTTP 500" in (tmp_path / "logs" / "fetch" / "Ruth.log").read_text()
        # Every other book finished.
        ref_work, _ = reference
        results = tmp_path / "results"
        assert outputs_of(tmp_path, "chunks", ["Jonah"]) == outputs_of(ref_work, "chunks", ["Jonah"])
        assert (results / "fulltext" / "Jonah.done").exists() and (results / "vectors" / "Jonah.npy").exists()
        assert not (results / "raw" / "Ruth.jsonl").exists()
        jonah_files = [p for p in results.rglob("*") if p.is_file() and p.stem.split(".")[0] == "Jonah"]
        before = {p: p.stat().st_mtime_ns for p in jonah_files}

        replica_call(url, "/_replica/faults", {})  # the server is healthy again
        replica_call(url, "/_replica/reset", {})
        requests.paths.clear()
        second = run_snakemake(tmp_path, config, "--cores", "2")
        served = replica_call(url, "/_replica/stats")

    assert second.returncode == 0, second.stderr[-4000:]
    jobs = executed_jobs(second.stdout + second.stderr)
    assert {(rule, book) for rule, book in jobs if book} == {(rule, "Ruth") for rule in PER_BOOK_RULES}, jobs
    assert {rule for rule, book in jobs if not book} <= AGGREGATE_RULES, jobs
    ruth_stats = orjson.loads((results / "stats" / "fetch" / "Ruth.json").read_bytes())
    assert requests.by_book(books) == Counter({"Ruth": ruth_stats["requests"]}), requests.paths
    assert served["requests_total"] == ruth_stats["requests"]
    assert set(served["requests_by_route"]) <= {"v2_raw_index", "v3_texts"}, served["requests_by_route"]
    assert {p: p.stat().st_mtime_ns for p in jonah_files} == before
    assert outputs_of(tmp_path, "raw", books) == outputs_of(ref_work, "raw", books)
    assert failed_json(tmp_path) == [] and not failure_lines(second)


@pytest.mark.slow
def test_a_failed_book_dropped_from_the_config_is_not_reported_again(sample_dir, tmp_path):
    with ReplicaThread(sample_dir, faults=FaultSpec(fail_books=("Ruth",))) as url:
        first = run_snakemake(tmp_path, fast_config(tmp_path, url, ["Jonah", "Ruth"], fetch={"retries": 2}),
                              "--cores", "2")
        assert first.returncode != 0 and [r["book"] for r in failed_json(tmp_path)] == ["Ruth"]
        # The user gives up on Ruth for now: the run is clean, and Ruth's record waits for her return.
        second = run_snakemake(tmp_path, fast_config(tmp_path, url, ["Jonah"]), "--cores", "2")
    assert second.returncode == 0, second.stderr[-4000:]
    assert failed_json(tmp_path) == [] and not failure_lines(second)
    assert (tmp_path / "results" / "failed" / "fetch" / "Ruth.json").exists()


def _job_pids(session: int, script: str) -> list[int]:
    """The processes of snakemake's session running `script` (Snakemake runs it as .snakemake/scripts/tmp*.NAME)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if os.getsid(int(entry.name)) == session and any(arg.endswith(f".{script}".encode()) for arg in cmdline):
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_a_job_killed_by_a_signal_is_listed_as_a_failure_and_reruns(sample_dir, tmp_path):
    """What the out-of-memory killer does to a job: SIGKILL, no Python error, and yet the book is named."""
    with ReplicaThread(sample_dir, latency_ms=400) as url:  # slow enough to catch the fetch job mid-request
        config = fast_config(tmp_path, url, ["Jonah"])
        under_way = tmp_path / "results" / "failed" / "fetch" / "Jonah.json"
        kills = 0

        def kill_fetch_jobs() -> bool:
            """Once a fetch job is under way (its record written), SIGKILL it; the profile's retry too."""
            nonlocal kills
            if under_way.exists():
                for pid in _job_pids(proc.pid, "fetch.py"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        kills += 1
            return False

        proc = start_snakemake(tmp_path, config, "--cores", "2")
        try:
            wait_until(kill_fetch_jobs, proc, timeout=180, interval=0.01)
        finally:
            kill_tree(proc)
        log = (tmp_path / "snakemake.log").read_text()
        assert kills >= 1 and proc.returncode != 0, log[-3000:]
        [record] = failed_json(tmp_path)
        assert (record["rule"], record["book"]) == ("fetch", "Jonah"), record
        assert record["cause"].startswith("Jonah: the fetch job did not finish: killed by a signal"), record
        assert "logs/fetch/Jonah.log" in record["cause"]
        assert "sefaria-ingest: FAILED fetch: Jonah: the fetch job did not finish" in log, log[-3000:]
        assert not (tmp_path / "results" / "raw" / "Jonah.jsonl").exists()

        rerun = run_snakemake(tmp_path, config, "--cores", "2")
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert failed_json(tmp_path) == [] and not failure_lines(rerun)
    assert len(jsonl_records(tmp_path / "results" / "raw" / "Jonah.jsonl")) == 96


# ---- 4. bad input ----

@pytest.mark.slow
@pytest.mark.parametrize("change, key", [
    (lambda c: c["fetch"].update(retries="six"), "fetch.retries"),
    (lambda c: c["fetch"].update(requests_per_second=-1), "fetch.requests_per_second"),
    (lambda c: c.update(bookz=["Ruth"]), "bookz"),
    (lambda c: c["chunk"].update(max_token=256), "max_token"),
], ids=["wrong-type", "negative-rate", "unknown-key", "unknown-nested-key"])
def test_a_config_that_fails_the_schema_stops_with_one_line_and_touches_nothing(reference, tmp_path, change, key):
    work, config = copy_run(reference, tmp_path / "run")
    values = yaml.safe_load(config.read_text())
    change(values)
    config.write_text(yaml.safe_dump(values, allow_unicode=True))
    before = tree_bytes(work / "results")
    run = run_snakemake(work, config, "--cores", "2")
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("sefaria-ingest:")]
    assert len(errors) == 1 and errors[0].startswith("sefaria-ingest: invalid config:") and key in errors[0], errors
    assert not executed_jobs(run.stdout + run.stderr)
    assert tree_bytes(work / "results") == before


@pytest.mark.slow
def test_an_unknown_book_or_category_added_to_a_finished_run_is_named_and_damages_nothing(reference, tmp_path):
    work, config = copy_run(reference, tmp_path / "run")
    good = config.read_text()
    values = yaml.safe_load(good)
    values["books"].append("Genesys")
    values["categories"] = ["Tanakh/Torahh"]
    config.write_text(yaml.safe_dump(values, allow_unicode=True))
    before = tree_bytes(work / "results")
    run = run_snakemake(work, config, "--cores", "2")
    assert run.returncode != 0
    [line] = failure_lines(run)
    assert "unknown book 'Genesys'" in line and "unknown category 'Tanakh/Torahh'" in line, line
    assert "did you mean 'Genesis'" in line
    def unchanged(tree: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in tree.items() if k != "catalog.json" and not k.startswith("failed")}

    assert unchanged(tree_bytes(work / "results")) == unchanged(before)

    # Back to the old selection: the catalog is rebuilt and no book is fetched, chunked or indexed again.
    config.write_text(good)
    again = run_snakemake(work, config, "--cores", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {rule for rule, _ in executed_jobs(again.stdout + again.stderr)} <= {"catalog", "all"}
    assert tree_bytes(work / "results" / "raw") == {k.removeprefix("raw/"): v for k, v in before.items()
                                                    if k.startswith("raw/")}
    assert failed_json(work) == []


def _evil_toc(titles: list[str]):
    """Adds books with these titles to the replica's table of contents (a server we do not control)."""

    @web.middleware
    async def add_books(request: web.Request, handler):
        response = await handler(request)
        if request.path != "/api/index":
            return response
        toc = json.loads(response.body)
        toc[0]["contents"].extend({"title": t, "heTitle": "", "categories": [toc[0]["category"]]} for t in titles)
        return web.json_response(toc)

    return add_books


@pytest.mark.slow
@pytest.mark.parametrize("title", ["../../escaped", "AC/DC"])
def test_a_title_that_could_escape_results_is_refused(sample_dir, tmp_path, title):
    with ReplicaThread(sample_dir, middlewares=[_evil_toc([title])]) as url:
        work = tmp_path / "run"
        work.mkdir()
        config = fast_config(work, url, ["Jonah", title])
        run = run_snakemake(work, config, "--cores", "2")
    assert run.returncode != 0
    [line] = failure_lines(run)
    assert title in line and "cannot be used as a file name" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written beside the run directory
    assert not (work / "results" / "raw").exists()


HOSTILE = '<script>alert("pwned")</script>\u202e\u200d\ufeff\u2028e\u0301\U0001F600 '


def _texts(value, change):
    """Apply `change` to every string of a (jagged) text array."""
    if isinstance(value, list):
        return [_texts(v, change) for v in value]
    return change(value) if isinstance(value, str) else value


def _broken_server():
    """Ruth: cut JSON every time. Esther: a schema of an unexpected shape. Hallel: no text at all.
    Pirkei Avot: a script tag and odd Unicode in the first segment of each version."""

    @web.middleware
    async def broken(request: web.Request, handler):
        path = request.path
        if path.startswith("/api/v3/texts/Ruth"):
            return web.Response(body=b'{"versions": [{"text": ["', content_type="application/json")
        response = await handler(request)
        if path == "/api/v2/raw/index/Esther":
            index = json.loads(response.body)
            index["schema"]["addressTypes"] = index["schema"]["addressTypes"][:1]
            return web.json_response(index)
        if path.startswith(("/api/v3/texts/Hallel", "/api/v3/texts/Pirkei Avot")) and response.status == 200:
            body = json.loads(response.body)
            for version in body["versions"]:
                if path.startswith("/api/v3/texts/Hallel"):
                    version["text"] = _texts(version["text"], lambda s: "")
                else:
                    first = [True]

                    def spike(s: str) -> str:
                        if s and first[0]:
                            first[0] = False
                            return HOSTILE + s
                        return s

                    version["text"] = _texts(version["text"], spike)
            return web.json_response(body)
        return response

    return broken


@pytest.mark.slow
def test_bad_server_answers_fail_only_their_book_with_one_line_each(reference, sample_dir, tmp_path):
    books = ["Jonah", "Ruth", "Esther", "Hallel", "Pirkei Avot"]
    targets = [f"results/raw/{slug(t)}.jsonl" for t in books] + ["results/chunks/Pirkei_Avot.jsonl",
                                                                 "results/fulltext/Pirkei_Avot.done"]
    with ReplicaThread(sample_dir, middlewares=[_broken_server()]) as url:
        config = fast_config(tmp_path, url, books, fetch={"retries": 2})
        run = run_snakemake(tmp_path, config, "--cores", "2", *targets)
    assert run.returncode != 0
    causes = {r["book"]: r["cause"] for r in failed_json(tmp_path)}
    assert set(causes) == {"Ruth", "Esther", "Hallel"}, causes
    assert "not valid JSON" in causes["Ruth"]
    assert "addressTypes" in causes["Esther"]
    assert "empty book" in causes["Hallel"]
    for book, cause in causes.items():
        assert cause.startswith(book) and "\n" not in cause, cause
    assert len(failure_lines(run)) == 3
    results = tmp_path / "results"
    assert {p.name for p in (results / "raw").iterdir()} == {"Jonah.jsonl", "Pirkei_Avot.jsonl"}
    ref_work, _ = reference
    assert outputs_of(tmp_path, "raw", ["Jonah"]) == outputs_of(ref_work, "raw", ["Jonah"])

    # Markup and odd Unicode arrive verbatim in the raw records and never reach the clean text or the index.
    raw = jsonl_records(results / "raw" / "Pirkei_Avot.jsonl")
    spiked = [r for r in raw if r["text"].startswith(HOSTILE)]
    assert {r["lang"] for r in spiked} == {"he", "en"}
    chunks = jsonl_records(results / "chunks" / "Pirkei_Avot.jsonl")
    assert {ref for c in chunks for ref in c["refs"]} >= {r["ref"] for r in spiked}
    for chunk in chunks:
        for field in ("text", "search_text"):
            assert not [s for s in ("<script", "pwned", "alert", "\u202e", "\u200d", "\ufeff") if s in chunk[field]], \
                chunk[field][:200]
    assert not search(results, "pwned alert script", k=5, mode="bm25")
    assert search(results, "Moses received the Torah from Sinai", k=3, mode="bm25")[0].book == "Pirkei Avot"


@pytest.mark.slow
def test_an_unreachable_server_fails_the_catalog_with_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    config = fast_config(tmp_path, f"http://127.0.0.1:{port}", ["Jonah"])
    run = run_snakemake(tmp_path, config, "--cores", "2")
    assert run.returncode != 0
    [line] = failure_lines(run)
    assert "FAILED catalog" in line and "connection" in line.lower() and f"127.0.0.1:{port}" in line, line
    assert not (tmp_path / "results" / "catalog.json").exists()


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str):
    """A tmpfs of `size` mounted at `path` while the block runs (skips the test where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command to make a small tmpfs with")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.slow
def test_a_full_disk_fails_the_book_that_did_not_fit_and_keeps_the_rest(reference, replica, tmp_path):
    ref_work, _ = reference
    jonah_bytes = len(outputs_of(ref_work, "raw", ["Jonah"])["Jonah"])
    ruth_bytes = len(outputs_of(ref_work, "raw", ["Ruth"])["Ruth"])
    size_kb = jonah_bytes // 1024 + 8
    assert ruth_bytes > size_kb * 1024, "Ruth must not fit where Jonah does"
    config = fast_config(tmp_path, replica, ["Jonah", "Ruth"])
    targets = ["results/raw/Jonah.jsonl", "results/raw/Ruth.jsonl"]
    with tiny_tmpfs(tmp_path / "results" / "raw", f"{size_kb}k") as raw:
        # One fetch at a time, so Jonah's file never shares the small disk with Ruth's half-written one.
        run = run_snakemake(tmp_path, config, "--resources", "sefaria_api=1", "--cores", "2", *targets)
        assert run.returncode != 0
        [record] = failed_json(tmp_path)
        assert (record["rule"], record["book"]) == ("fetch", "Ruth"), record
        assert "No space left on device" in record["cause"] and record["cause"].startswith("Ruth")
        [line] = failure_lines(run)
        assert "Ruth" in line and "No space left on device" in line
        # The failed write took its temp file with it; the book that fit is whole.
        assert sorted(os.listdir(raw)) == ["Jonah.jsonl"]
        assert outputs_of(tmp_path, "raw", ["Jonah"]) == outputs_of(ref_work, "raw", ["Jonah"])

        # Recovery: make room, run the same command again; only the book that failed is fetched.
        subprocess.run(["mount", "-o", "remount,size=1m", str(raw)], check=True)
        again = run_snakemake(tmp_path, config, "--resources", "sefaria_api=1", "--cores", "2", *targets)
        assert again.returncode == 0, again.stderr[-3000:]
        assert executed_jobs(again.stdout + again.stderr) == [("fetch", "Ruth")]
        assert outputs_of(tmp_path, "raw", ["Jonah", "Ruth"]) == outputs_of(ref_work, "raw", ["Jonah", "Ruth"])
        assert failed_json(tmp_path) == []


def test_enospc_during_an_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """Where no tmpfs can be mounted, the same failure from inside: the disk fills while a book is written."""
    out = tmp_path / "raw" / "Ruth.jsonl"
    out.parent.mkdir()
    out.write_bytes(b'{"old": true}\n')
    segment = Segment("Ruth 1:1", "רות א׳:א׳", "Ruth", ["Tanakh"], "en", "v", "CC0", "In the days")
    real_fsync = os.fsync

    def full(fd):
        real_fsync(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as failure:
        write_book(BookFetch(book="Ruth", segments=[segment]), out)
    assert failure.value.errno == errno.ENOSPC
    assert out.read_bytes() == b'{"old": true}\n' and os.listdir(out.parent) == ["Ruth.jsonl"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_elasticsearch_down_is_one_line_naming_the_book():
    chunks = [Chunk(id="Jonah-1", ref="Jonah 1:1", he_ref="יונה א׳:א׳", refs=["Jonah 1:1"], book="Jonah",
                    categories=["Tanakh"], lang="en", version_title="v", license="CC0", text="Now the word",
                    search_text="now the word", original="Now the word")]
    backend = open_backend({"backend": "elasticsearch", "url": f"http://127.0.0.1:{_closed_port()}",
                            "max_retries": 0})
    try:
        with pytest.raises(IngestError) as failure:
            backend.upsert_book("Jonah", chunks)
    finally:
        backend.close()
    message = str(failure.value)
    assert message.startswith("Jonah: ") and "\n" not in message and "onnect" in message, message


@pytest.mark.slow
def test_elasticsearch_down_fails_the_fulltext_job_and_nothing_else(reference, tmp_path):
    work, config = copy_run(reference, tmp_path / "run")
    values = yaml.safe_load(config.read_text())
    values["fulltext"] = {"backend": "elasticsearch", "url": f"http://127.0.0.1:{_closed_port()}", "max_retries": 0}
    try:
        validate_config(json.loads(json.dumps(values)))
    except ConfigError as exc:
        pytest.skip(f"config/schema.yaml does not accept an Elasticsearch full-text config: {exc}")
    config.write_text(yaml.safe_dump(values, allow_unicode=True))
    (work / "results" / "fulltext" / "Jonah.done").unlink()
    before = tree_bytes(work / "results")
    run = run_snakemake(work, config, "--cores", "2", "results/fulltext/Jonah.done")
    assert run.returncode != 0
    [record] = failed_json(work)
    assert (record["rule"], record["book"]) == ("fulltext", "Jonah") and record["cause"].startswith("Jonah: ")
    assert "\n" not in record["cause"] and "onnect" in record["cause"], record
    [line] = failure_lines(run)
    assert "fulltext: Jonah" in line
    # Only the failure records changed: every other book's outputs and the tantivy index are as they were.
    after = tree_bytes(work / "results")
    assert {k: v for k, v in after.items() if not k.startswith("failed")} == \
        {k: v for k, v in before.items() if not k.startswith("failed")}


def test_a_killed_fulltext_writer_leaves_no_lock_behind(tmp_path):
    """tantivy's writer lock is a kernel file lock: a SIGKILLed writer's lock file stays, its lock does not."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from sefaria_ingest.index.tantivy_index import TantivyBackend\n"
         "writer = TantivyBackend(sys.argv[1])._index.writer(heap_size=15_000_000, num_threads=1)\n"
         "print('holding', flush=True)\n"
         "time.sleep(120)\n", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        backend = open_backend({"backend": "tantivy", "path": str(tmp_path)})
        with pytest.raises(IngestError, match="^Jonah: .*locked by another writer"):
            backend.upsert_book("Jonah", [])
    finally:
        holder.kill()
        holder.wait(30)
    assert (tmp_path / ".tantivy-writer.lock").exists()
    assert backend.upsert_book("Jonah", []) == 0
    backend.close()


# ---- 5. a rerun after success does nothing ----

@pytest.mark.slow
def test_a_rerun_after_success_runs_nothing_even_after_a_touch(reference):
    work, config = reference
    profile = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    raw = work / "results" / "raw" / "Jonah.jsonl"
    # Checksums (not only mtimes) decide for files up to this size: every raw file here is far below it.
    assert profile["max-checksum-file-size"] >= 1_000_000_000 > raw.stat().st_size

    dry = run_snakemake(work, config, "-n")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]

    chunks = work / "results" / "chunks" / "Jonah.jsonl"
    stamps = {p: p.stat().st_mtime_ns for p in (chunks, work / "results" / "vectors" / "Jonah.npy")}
    later = time.time() + 60
    os.utime(raw, (later, later))  # the content is unchanged
    rerun = run_snakemake(work, config, "--cores", "2")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert executed_jobs(rerun.stdout + rerun.stderr) == []
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
