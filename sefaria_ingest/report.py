"""Tables (and plots) for `snakemake --report`: per-book fetch statistics and every rule's benchmarks."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable

import orjson

from .atomic import atomic_write

FETCH_COLUMNS = ["book", "source", "segments", "requests", "retries", "bytes", "seconds", "segments_per_second"]
BENCH_COLUMNS = ["s", "max_rss", "max_vms", "io_in", "io_out", "mean_load", "cpu_time"]


def _write_tsv(path: str | Path, header: list[str], rows: Iterable[list]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())


def fetch_stats_table(stats_files: Iterable[str], out: str | Path) -> list[dict]:
    """One row per book from results/stats/fetch/*.json, plus a TOTAL row."""
    rows = [orjson.loads(Path(p).read_bytes()) for p in stats_files]
    table = []
    for r in rows:
        seconds = float(r.get("seconds") or 0)
        table.append([r.get("book"), r.get("source"), r.get("segments", 0), r.get("requests", 0), r.get("retries", 0),
                      r.get("bytes", 0), f"{seconds:.2f}", f"{r.get('segments', 0) / seconds:.1f}" if seconds else ""])
    total_s = sum(float(r.get("seconds") or 0) for r in rows)
    total_seg = sum(r.get("segments", 0) for r in rows)
    table.append(["TOTAL", "", total_seg, sum(r.get("requests", 0) for r in rows),
                  sum(r.get("retries", 0) for r in rows), sum(r.get("bytes", 0) for r in rows), f"{total_s:.2f}", ""])
    _write_tsv(out, FETCH_COLUMNS, table)
    return rows


def read_benchmark(path: str | Path) -> dict:
    """The last row of a Snakemake benchmark TSV (one row per repeat) as a dict of strings."""
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: empty benchmark file")
    return rows[-1]


def benchmark_table(files: Iterable[str], out: str | Path) -> list[list]:
    """Rows `rule, job, s, max_rss, …` from benchmarks/<rule>/<job>.tsv, then a per-rule sum of seconds."""
    table: list[list] = []
    per_rule: dict[str, float] = {}
    for path in files:
        p = Path(path)
        row = read_benchmark(p)
        rule, job = p.parent.name, p.stem
        table.append([rule, job, *(row.get(c, "") for c in BENCH_COLUMNS)])
        try:
            per_rule[rule] = per_rule.get(rule, 0.0) + float(row.get("s") or 0)
        except ValueError:
            pass
    for rule, seconds in per_rule.items():
        table.append([rule, "ALL", f"{seconds:.4f}", *[""] * (len(BENCH_COLUMNS) - 1)])
    _write_tsv(out, ["rule", "job", *BENCH_COLUMNS], table)
    return table
