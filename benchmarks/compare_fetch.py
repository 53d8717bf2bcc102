"""Benchmark 1: the old system's fetch designs against ours, side by side, against a replica with real latency.

    python benchmarks/compare_fetch.py [--latency-ms 50] [--books ...] [--designs a,b,c,w]

Starts the replica in a process of its own (`python -m sefaria_ingest.replica --preload`), resets its counters
before each design and reads them after, prints one markdown table, and exits 1 when a target is missed:
(c) or w loses or duplicates a segment, or (c)'s segments/second is below --min-speedup times (b)'s. Design w
runs the real `snakemake` command for the same books, to show what Snakemake's own start-up adds (no target).
The default books take (a) about 8 s, (b) about 31 s, (c) and w a few seconds (2 cores, 50 ms); a walk of (a) still
going after --naive-time-cap seconds (default 120) stops and reports what it got, for large book sets.
`compare_fetch.py _job ...` is one fetch job of (c), run in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchcount import BookOutcome, BookSpec, Tally, book_specs, expected_segments, tally  # noqa: E402

REPO = HERE.parent
SAMPLE = REPO.parent / "shared" / "sefaria-sample"
# A Talmud tractate, a complex book, commentary-free simple books from 4 to 150 chapters.
DEFAULT_BOOKS = ("Berakhot", "Tanya", "Genesis", "Psalms", "Esther", "Ruth", "Jonah")
DESIGNS = ("a", "b", "c", "w")
# profiles/default/config.yaml: at most this many fetch jobs talk to Sefaria at once, whatever --cores says.
SEFARIA_API = 4
JOB_FLAG = "_job"


@dataclass(slots=True)
class Limits:
    """Per-job HTTP limits: the same numbers for (b)'s processes and (c)'s jobs."""

    requests_per_second: float = 10.0
    burst: int = 2
    max_in_flight: int = 50


@dataclass(slots=True)
class DesignRun:
    """One design's run: what each book got, the wall time, and what the replica saw."""

    name: str
    setup: str
    outcomes: list[BookOutcome]
    wall: float
    server: dict
    per_book: dict[str, Tally] = field(default_factory=dict)
    total: Tally = field(default_factory=Tally)
    budget: float | None = None  # the machine-wide requests/second it ran under, if any

    @property
    def segments_per_second(self) -> float:
        return self.total.unique / self.wall if self.wall > 0 else 0.0

    @property
    def requests(self) -> int:
        return int(self.server.get("requests_total", 0))


class Replica:
    """The replica in a child process (never in a measured one); its URL and its counters."""

    def __init__(self, data: Path, latency_ms: float):
        cmd = [sys.executable, "-m", "sefaria_ingest.replica", "--data", str(data), "--latency-ms", str(latency_ms),
               "--preload"]
        self._proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"replica did not start (exit {self._proc.poll()}): {line!r}")
        self.url = line.split("listening on ", 1)[1].strip()

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._call("/_replica/reset", "POST")

    def stats(self) -> dict:
        return self._call("/_replica/stats")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


# --- design (c): this project's fetch, one process per book as the workflow runs it ----------------------------


def run_ours(base_url: str, books: Sequence[BookSpec], *, jobs: int, limits: Limits, workdir: Path,
             global_rps: float | None = None) -> list[BookOutcome]:
    """Each book in a fresh process running what scripts/fetch.py runs, at most `jobs` at once (like Snakemake).

    The config is validated once, here, as the Snakefile does before any job starts; each job reads the validated
    config (Snakemake hands its jobs the same dict). With `global_rps`, every job also waits on the machine-wide
    limiter (sefaria_ingest.global_limit), one state file for the whole run. Segments are left in `workdir`;
    `load_ours` reads them once timing is over.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(job_config(base_url, [b.title for b in books], limits, global_rps)),
                           encoding="utf-8")
    state = workdir / "global_rate.json"
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_job, config_path, book, workdir / f"book{i}", state)
                   for i, book in enumerate(books)]
        return [f.result() for f in futures]


def job_config(base_url: str, titles: Sequence[str], limits: Limits, global_rps: float | None) -> dict:
    """The workflow config for (c): the api source at `base_url`, (b)'s per-job limits, validated with defaults."""
    from sefaria_ingest.config import validate_config

    return validate_config({
        "source": "api", "api_url": base_url, "books": list(titles),
        "fetch": {"requests_per_second": limits.requests_per_second, "burst": limits.burst,
                  "max_in_flight": limits.max_in_flight, "max_connections": limits.max_in_flight,
                  "global_requests_per_second": global_rps or 0},
    })


def load_ours(outcomes: Sequence[BookOutcome], workdir: Path) -> None:
    """Fill in each book's segment keys from the JSONL its job wrote (not timed: the workflow never reads back)."""
    for i, outcome in enumerate(outcomes):
        if outcome.error is None:
            outcome.keys = segment_keys(workdir / f"book{i}.jsonl")


def segment_keys(path: Path) -> list:
    """(lang, versionTitle, ref) of every segment record in a fetch output."""
    from sefaria_ingest.records import Segment, read_jsonl

    return [(s.lang, s.version_title, s.ref) for s in read_jsonl(path, Segment)]


def _run_job(config_path: Path, book: BookSpec, out: Path, state: Path) -> BookOutcome:
    cmd = [sys.executable, str(Path(__file__).resolve()), JOB_FLAG, "--config", str(config_path), "--book",
           book.title, "--out", str(out), "--global-state", str(state)]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    outcome = BookOutcome(book.title, seconds=time.monotonic() - started)
    if proc.returncode != 0:
        outcome.error = f"fetch job exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
        return outcome
    stats = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    outcome.requests = int(stats.get("requests", 0))
    return outcome


def job_main(argv: Sequence[str]) -> int:
    """One fetch job, as scripts/fetch.py runs it: validated config -> ClientConfig (+ global limiter) -> fetch_book."""
    from sefaria_ingest.config import client_config, fetch_base, fetch_options
    from sefaria_ingest.errors import IngestError
    from sefaria_ingest.fetch import fetch_book, write_book
    from sefaria_ingest.global_limit import make_global_limiter

    p = argparse.ArgumentParser(prog=f"compare_fetch.py {JOB_FLAG}")
    p.add_argument("--config", required=True, type=Path, help="the validated config (JSON), as Snakemake hands it")
    p.add_argument("--book", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--global-state", type=Path, help="the shared limiter's state file (the workflow's lives under "
                                                     ".snakemake/; a benchmark run uses its own)")
    args = p.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    shared = make_global_limiter(config["fetch"]["global_requests_per_second"], args.global_state)
    try:
        result = asyncio.run(fetch_book(args.book, source=config["source"], base_url=fetch_base(config),
                                        client_config=client_config(config), options=fetch_options(config),
                                        limiters=[shared] if shared else []))
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_book(result, args.out.with_suffix(".jsonl"), args.out.with_suffix(".json"))
    return 0


# --- (c) as a user runs it: the whole `snakemake` command, for information ------------------------------------------


def run_workflow(base_url: str, books: Sequence[BookSpec], *, jobs: int, limits: Limits, workdir: Path,
                 global_rps: float | None) -> list[BookOutcome]:
    """`snakemake` with the default profile and the fetch outputs of `books` as targets, in a fresh directory.

    Timed whole: Snakemake's start-up and DAG, the catalog checkpoint (one table-of-contents request), and every
    fetch job through `scripts/fetch.py`. Segments are left in workdir/results/raw; `load_workflow` reads them.
    """
    from sefaria_ingest.catalog import book_slug

    workdir.mkdir(parents=True, exist_ok=True)
    config = job_config(base_url, [b.title for b in books], limits, global_rps) | {"categories": []}
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    targets = [f"results/raw/{book_slug(b.title)}.jsonl" for b in books]
    # The targets come first: `--resources` would take them as more resources.
    cmd = [sys.executable, "-m", "snakemake", *targets, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--profile", str(REPO / "profiles" / "default"), "--configfile", str(config_path),
           "--cores", str(jobs), "--resources", f"sefaria_api={jobs}"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    last_line = next((line for line in reversed(proc.stderr.splitlines()) if line.strip()), "")
    outcomes = []
    for book in books:
        slug = book_slug(book.title)
        outcome = BookOutcome(book.title)
        stats = workdir / "results" / "stats" / "fetch" / f"{slug}.json"
        if stats.exists():
            doc = json.loads(stats.read_text(encoding="utf-8"))
            outcome.requests, outcome.seconds = int(doc.get("requests", 0)), float(doc.get("seconds", 0.0))
        else:
            outcome.error = f"snakemake exited {proc.returncode}: {last_line.strip()[:300]}"
        outcomes.append(outcome)
    return outcomes


def load_workflow(outcomes: Sequence[BookOutcome], workdir: Path) -> None:
    """Fill in each book's segment keys from the workflow's results/raw (not timed)."""
    from sefaria_ingest.catalog import book_slug

    for outcome in outcomes:
        if outcome.error is None:
            outcome.keys = segment_keys(workdir / "results" / "raw" / f"{book_slug(outcome.book)}.jsonl")


# --- the comparison ------------------------------------------------------------------------------------------------


def measure(replica: Replica, name: str, setup: str, run: Callable[[], list[BookOutcome]],
            expected: dict[str, int], collect: Callable[[list[BookOutcome]], None] | None = None) -> DesignRun:
    """Reset the replica's counters, run one design, read them back, account for every segment."""
    replica.reset()
    started = time.monotonic()
    outcomes = run()
    wall = time.monotonic() - started
    server = replica.stats()
    if collect is not None:
        collect(outcomes)
    result = DesignRun(name, setup, outcomes, wall, server)
    result.per_book, result.total = tally(outcomes, expected)
    print(f"# {name}: {result.total.unique} segments in {wall:.1f} s", file=sys.stderr, flush=True)
    return result


def global_budget(runs: dict[str, DesignRun], limits: Limits, processes: int, override: float | None) -> float:
    """The requests/second (b) used at its peak as the replica saw it; its configured ceiling if (b) did not run."""
    if override is not None:
        return override
    if "b" in runs and runs["b"].server.get("peak_requests_per_second"):
        return float(runs["b"].server["peak_requests_per_second"])
    return processes * limits.requests_per_second


def check_targets(runs: dict[str, DesignRun], min_speedup: float) -> list[str]:
    """Every missed target, as one line each; empty when all are met.

    Ours must lose nothing and keep to its budget in every run, the whole `snakemake` command (w) included; the
    speedup target is (c)'s, the fetch design's, so w's fixed cost of starting Snakemake is reported, not judged.
    """
    missed = []
    baseline = runs.get("b")
    for key, run in runs.items():
        if not (key.startswith("c") or key == "w"):
            continue
        if run.total.lost or run.total.duplicated:
            missed.append(f"{run.name}: {run.total.lost} segments lost, {run.total.duplicated} duplicated (target 0)")
        for outcome in run.outcomes:
            if outcome.error:
                missed.append(f"{run.name}: {outcome.book} failed: {outcome.error}")
        peak = run.server.get("peak_requests_per_second", 0)
        # The machine-wide limiter is a GCRA with a burst of 1: any one-second window may hold rate + 1.
        if run.budget is not None and peak > math.floor(run.budget) + 1:
            missed.append(f"{run.name}: peak {peak} requests/second over its budget of {run.budget:g} (+1 burst)")
        if baseline is not None and key != "w":
            ratio = speedup(run, baseline)
            if ratio < min_speedup:
                missed.append(f"{run.name}: {ratio:.1f}x the segments/second of (b), target {min_speedup:g}x")
    return missed


def speedup(run: DesignRun, baseline: DesignRun) -> float:
    base = baseline.segments_per_second
    return run.segments_per_second / base if base > 0 else float("inf")


def format_table(runs: dict[str, DesignRun]) -> str:
    """The markdown table: one row per design."""
    head = ("| design | setup | books | requests | requests/segment | segments | segments/s | peak server req/s "
            "| lost | duplicated | wall s | vs (b) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    baseline = runs.get("b")
    for run in runs.values():
        t = run.total
        per_segment = f"{run.requests / t.unique:.4f}" if t.unique else "n/a"
        ratio = f"{speedup(run, baseline):.1f}x" if baseline is not None else "n/a"
        lines.append(
            f"| {run.name} | {run.setup} | {len(run.outcomes)} | {run.requests} | {per_segment} | {t.unique} "
            f"| {run.segments_per_second:.0f} | {run.server.get('peak_requests_per_second', 0)} | {t.lost} "
            f"| {t.duplicated} | {run.wall:.2f} | {ratio} |")
    return "\n".join(lines)


def format_books(runs: dict[str, DesignRun]) -> str:
    """The books a design did not get exactly once each, with why; empty when every design got every book."""
    lines = ["| design | book | expected | obtained (unique) | lost | duplicated | requests | why |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs.values():
        for outcome in run.outcomes:
            t = run.per_book[outcome.book]
            if not (t.lost or t.duplicated or outcome.error):
                continue
            note = (outcome.error or "").replace("|", "/")[:120]
            lines.append(f"| {run.name} | {outcome.book} | {t.expected} | {t.unique} | {t.lost} | {t.duplicated} "
                         f"| {outcome.requests} | {note} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/compare_fetch.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SAMPLE, help="export tree the replica serves (default: the sample)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="replica latency per request (default 50)")
    p.add_argument("--books", nargs="+", default=list(DEFAULT_BOOKS), help="titles, or `all` for every book in --data")
    p.add_argument("--naive-books", nargs="+", help="books for (a) (default: --books)")
    p.add_argument("--naive-time-cap", type=float, default=120.0,
                   help="seconds after which (a) stops walking and reports what it got (default 120)")
    p.add_argument("--designs", default="a,b,c,w",
                   help="comma-separated subset of a,b,c,w (w: the whole `snakemake` command, for information)")
    p.add_argument("--rps", type=float, default=10.0, help="requests/second per job, (b) and (c) (default 10)")
    p.add_argument("--burst", type=int, default=2, help="token-bucket burst per job, (b) and (c) (default 2)")
    p.add_argument("--in-flight", type=int, default=50, help="requests in flight per job, (b) and (c) (default 50)")
    p.add_argument("--processes", type=int, default=10, help="(b)'s process pool (default 10)")
    p.add_argument("--jobs", type=int, default=SEFARIA_API,
                   help="(c)'s concurrent fetch jobs, min(--cores, sefaria_api) in the workflow "
                        f"(default {SEFARIA_API}: the profile's sefaria_api)")
    p.add_argument("--global-rps", type=float,
                   help="global budget for (c)'s second run (default: the peak requests/second (b) used)")
    p.add_argument("--min-speedup", type=float, default=10.0, help="target: (c) segments/s over (b)'s (default 10)")
    p.add_argument("--json", type=Path, help="also write every number measured here (JSON)")
    args = p.parse_args(argv)
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown or not designs:
        p.error(f"--designs takes a comma-separated subset of a,b,c,w, got {args.designs!r}")
    args.designs = designs
    return args


def _titles(data: Path, names: Sequence[str]) -> list[str]:
    """`all` means every book of the export tree."""
    if list(names) == ["all"]:
        from sefaria_ingest.export_tree import ExportTree

        return ExportTree(data).titles()
    return list(names)


def run_designs(args: argparse.Namespace, replica: Replica, expected: dict[str, int]) -> dict[str, DesignRun]:
    """Each chosen design in turn against the same replica; keys a, b, c, c_global."""
    from baseline_processes import run_processes
    from baseline_threads import run_threads

    books = book_specs(args.data, _titles(args.data, args.books))
    naive_books = book_specs(args.data, _titles(args.data, args.naive_books)) if args.naive_books else books
    limits = Limits(args.rps, args.burst, args.in_flight)
    runs: dict[str, DesignRun] = {}
    if "a" in args.designs:
        runs["a"] = measure(replica, "(a) threads", "500 threads, 1 per book, requests (pool 10)",
                            lambda: run_threads(replica.url, naive_books, time_cap=args.naive_time_cap),
                            expected)
    if "b" in args.designs:
        runs["b"] = measure(
            replica, "(b) processes",
            f"{args.processes} processes x {args.in_flight} in flight x {args.rps:g} req/s",
            lambda: run_processes(replica.url, books, processes=args.processes,
                                  requests_per_second=limits.requests_per_second, burst=limits.burst,
                                  max_in_flight=limits.max_in_flight), expected)
    if "c" in args.designs:
        with tempfile.TemporaryDirectory(prefix="compare_fetch.") as tmp:
            work = Path(tmp) / "c"
            runs["c"] = measure(
                replica, "(c) ours, per-job limits",
                f"{args.jobs} jobs x {limits.max_in_flight} in flight x {limits.requests_per_second:g} req/s",
                lambda: run_ours(replica.url, books, jobs=args.jobs, limits=limits, workdir=work),
                expected, lambda outcomes: load_ours(outcomes, work))
            budget = global_budget(runs, limits, args.processes, args.global_rps)
            work_global = Path(tmp) / "c_global"
            runs["c_global"] = measure(
                replica, "(c) ours, same global budget",
                f"as above + machine-wide limit of {budget:g} req/s",
                lambda: run_ours(replica.url, books, jobs=args.jobs, limits=limits, workdir=work_global,
                                 global_rps=budget),
                expected, lambda outcomes: load_ours(outcomes, work_global))
            runs["c_global"].budget = budget
    if "w" in args.designs:
        budget = global_budget(runs, limits, args.processes, args.global_rps)
        with tempfile.TemporaryDirectory(prefix="compare_fetch.") as tmp:
            work = Path(tmp) / "w"
            runs["w"] = measure(
                replica, "(c) through snakemake, whole command",
                f"`snakemake --cores {args.jobs}`, the default profile, fetch targets, global limit {budget:g} req/s",
                lambda: run_workflow(replica.url, books, jobs=args.jobs, limits=limits, workdir=work,
                                     global_rps=budget),
                expected, lambda outcomes: load_workflow(outcomes, work))
            runs["w"].budget = budget
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [JOB_FLAG]:
        return job_main(argv[1:])
    args = parse_args(argv)
    expected = expected_segments(args.data)
    # Other work on the machine slows (c) (process starts) far more than (b) (rate-bound): say how busy it was.
    load_before = os.getloadavg()[0]
    replica = Replica(args.data, args.latency_ms)
    try:
        runs = run_designs(args, replica, expected)
    finally:
        replica.stop()

    load = (load_before, os.getloadavg()[0])
    print(f"\nBenchmark 1 — replica latency {args.latency_ms:g} ms, {os.cpu_count()} CPUs, "
          f"1-minute load average {load[0]:.1f} before and {load[1]:.1f} after\n")
    print(format_table(runs))
    incomplete = format_books(runs)
    if incomplete:
        print("\nBooks not fetched exactly once (every other book was):\n")
        print(incomplete)
    missed = check_targets(runs, args.min_speedup)
    if args.json:
        _write_json(args.json, args, runs, missed, load)
    if missed:
        print("\nTARGETS MISSED:\n" + "\n".join(f"- {m}" for m in missed))
        return 1
    if "b" not in runs:
        print("\n(b) did not run: the speedup target was not checked")
    print("\nall targets met")
    return 0


def _write_json(path: Path, args: argparse.Namespace, runs: dict[str, DesignRun], missed: list[str],
                load: tuple[float, float]) -> None:
    from sefaria_ingest.atomic import atomic_write_bytes

    doc = {
        "latency_ms": args.latency_ms, "cpus": os.cpu_count(), "load_average": load, "targets_missed": missed,
        "designs": {key: {"name": r.name, "setup": r.setup, "wall_s": round(r.wall, 3), "server": r.server,
                          "segments_per_second": round(r.segments_per_second, 1),
                          "expected": r.total.expected, "unique": r.total.unique, "lost": r.total.lost,
                          "duplicated": r.total.duplicated,
                          "books": {o.book: {"requests": o.requests, "seconds": round(o.seconds, 3),
                                             "unique": r.per_book[o.book].unique,
                                             "lost": r.per_book[o.book].lost,
                                             "duplicated": r.per_book[o.book].duplicated, "error": o.error}
                                    for o in r.outcomes}}
                    for key, r in runs.items()},
    }
    atomic_write_bytes(path, json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8"))


if __name__ == "__main__":
    sys.exit(main())
