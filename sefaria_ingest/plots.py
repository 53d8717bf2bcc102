"""Figures for `snakemake --report`: throughput per stage, requests over time against the limit, time per book."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import orjson

from .atomic import atomic_write

STAGES = ["fetch", "chunk", "embed", "fulltext"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on build machines
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def _benchmarks(table: str | Path) -> dict[str, dict[str, float]]:
    """rule -> job -> seconds, from results/stats/benchmarks.tsv."""
    seconds: dict[str, dict[str, float]] = defaultdict(dict)
    with open(table, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["job"] != "ALL":
                try:
                    seconds[row["rule"]][row["job"]] = float(row["s"])
                except ValueError:
                    continue
    return seconds


def _fetch_stats(files: Iterable[str]) -> list[dict]:
    return [orjson.loads(Path(p).read_bytes()) for p in files]


def throughput_plot(benchmark_table: str | Path, stats_files: Iterable[str], out: str | Path) -> dict[str, float]:
    """Segments per second of job time for each per-book stage (the book's segment count over its job seconds)."""
    bench = _benchmarks(benchmark_table)
    segments = {s["book"].replace(" ", "_"): s.get("segments", 0) for s in _fetch_stats(stats_files)}
    rates = {}
    for stage in STAGES:
        jobs = bench.get(stage, {})
        total_s = sum(jobs.values())
        rates[stage] = sum(segments.get(b, 0) for b in jobs) / total_s if total_s else 0.0
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(list(rates), list(rates.values()), color="#4c72b0")
    ax.set_ylabel("segments / s of job time")
    ax.set_yscale("log")
    ax.set_title("Throughput per stage")
    for i, v in enumerate(rates.values()):
        ax.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    _save(fig, out)
    return rates


def requests_plot(stats_files: Iterable[str], out: str | Path, per_job_limit: float,
                  global_limit: float | None = None) -> list[int]:
    """All fetch jobs' requests per second on one wall-clock axis, with the configured limits drawn in."""
    stats = [s for s in _fetch_stats(stats_files) if s.get("requests_per_second")]
    timeline: list[int] = []
    if stats:
        start = min(s["started_at"] for s in stats)
        for s in stats:
            offset = int(s["started_at"] - start)
            per_second = s["requests_per_second"]
            timeline.extend([0] * (offset + len(per_second) - len(timeline)))
            for i, n in enumerate(per_second):
                timeline[offset + i] += n
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.step(range(len(timeline)), timeline, where="post", label="requests sent")
    ax.axhline(per_job_limit, color="#c44e52", linestyle="--", label=f"per-job limit {per_job_limit:g}/s")
    if global_limit:
        ax.axhline(global_limit, color="#55a868", linestyle=":", label=f"global limit {global_limit:g}/s")
    ax.set_xlabel("seconds since the first fetch")
    ax.set_ylabel("requests / s")
    ax.set_title("Requests to Sefaria over time" if stats else "Requests over time (no network fetches in this run)")
    ax.legend(fontsize=8)
    _save(fig, out)
    return timeline


def book_times_plot(benchmark_table: str | Path, out: str | Path, top: int = 40) -> dict[str, dict[str, float]]:
    """Seconds per book and stage, stacked, for the `top` slowest books."""
    bench = _benchmarks(benchmark_table)
    books = {b for stage in STAGES for b in bench.get(stage, {})}
    per_book = {b: {stage: bench.get(stage, {}).get(b, 0.0) for stage in STAGES} for b in books}
    slowest = sorted(per_book, key=lambda b: -sum(per_book[b].values()))[:top]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(slowest) + 1.2))
    left = [0.0] * len(slowest)
    for stage in STAGES:
        widths = [per_book[b][stage] for b in slowest]
        ax.barh(slowest, widths, left=left, label=stage)
        left = [l + w for l, w in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("Time per book")
    ax.legend(fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    _save(fig, out)
    return per_book
