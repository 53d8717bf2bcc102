"""Benchmark 3: how Snakemake's planning time grows with the catalog, up to the size of Sefaria's library.

Builds a synthetic, complete workflow directory of N books (catalog.json, every per-book output, the
aggregates), then times `snakemake -n` (DAG only) and a real no-op run for several N. Exits 1 when the
largest dry run exceeds the target or per-book time grows superlinearly.

    python benchmarks/scale_dag.py --books 7000 [--files-per-book 3] [--sizes 500,1000,2000,4000,7000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sefaria_ingest.catalog import BookEntry, book_slug, write_catalog  # noqa: E402

DRY_RUN_TARGET_S = 60.0
SUPERLINEAR_RATIO = 2.0  # per-book time at the largest N over that at the smallest

# Shapes of real Sefaria titles: commentaries "X on Y", comma-separated sub-books, apostrophes, Hebrew.
_COMMENTATORS = ["Rashi", "Ibn Ezra", "Ramban", "Sforno", "Or HaChaim", "Ba'al HaTurim", "Rabbeinu Bahya",
                 "Kli Yakar", "Tosafot", "Steinsaltz", "Rabbeinu Chananel", "Me'or Einayim", "Chizkuni"]
_BASES = ["Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Berakhot", "Shabbat", "Eruvin", "Pesachim",
          "Yoma", "Sukkah", "Beitzah", "Rosh Hashanah", "Ta'anit", "Megillah", "Mo'ed Katan", "Chagigah",
          "Yevamot", "Ketubot", "Nedarim", "Bava Kamma", "Bava Metzia", "Bava Batra", "Sanhedrin", "Makkot"]
_COMPOUND = ["Mishneh Torah, Laws of {}", "Shulchan Arukh, {}", "Pesach Haggadah, {}", "Sefer HaChinukh, {}"]
_PARTS = ["Repentance", "Kings and Wars", "Orach Chayyim", "Yoreh De'ah", "Magid", "Kadesh", "Prayer", "Shabbat"]
_HEBREW = ["ספר החינוך", "משנה תורה", "שולחן ערוך", "פירוש על התורה", "חידושי הר״ן", "שו״ת רב פעלים"]
CATEGORIES = [["Tanakh", "Commentary"], ["Talmud", "Bavli", "Rishonim"], ["Halakhah", "Mishneh Torah"],
              ["Liturgy", "Haggadah"], ["Chasidut"], ["Responsa", "אחרונים"]]


@dataclass(slots=True)
class Timing:
    books: int
    dry_run_s: float
    noop_s: float

    @property
    def dry_per_book_ms(self) -> float:
        return 1000 * self.dry_run_s / self.books

    @property
    def noop_per_book_ms(self) -> float:
        return 1000 * self.noop_s / self.books


def synthetic_titles(n: int) -> list[BookEntry]:
    """n distinct catalog entries with titles shaped like Sefaria's (spaces, commas, apostrophes, Hebrew)."""
    pools = [f"{c} on {b}" for c in _COMMENTATORS for b in _BASES]
    pools += [t.format(p) for t in _COMPOUND for p in _PARTS]
    pools += _HEBREW
    entries = []
    for i in range(n):
        base = pools[i % len(pools)]
        title = base if i < len(pools) else f"{base} {i // len(pools) + 1}"
        he_title = title if base in _HEBREW else f"ספר {i + 1}"
        entries.append(BookEntry(title, he_title, list(CATEGORIES[i % len(CATEGORIES)]), book_slug(title)))
    return entries


def _touch(path: Path, mtime: float, content: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))


def per_book_outputs(slug: str) -> list[list[str]]:
    """Every file the workflow writes for one book, grouped by stage (each stage newer than the one before)."""
    return [
        [f"results/raw/{slug}.jsonl", f"results/stats/fetch/{slug}.json", f"logs/fetch/{slug}.log",
         f"benchmarks/fetch/{slug}.tsv"],
        [f"results/chunks/{slug}.jsonl", f"logs/chunk/{slug}.log", f"benchmarks/chunk/{slug}.tsv"],
        [f"results/vectors/{slug}.npy", f"results/vectors/{slug}.ids.json", f"logs/embed/{slug}.log",
         f"benchmarks/embed/{slug}.tsv", f"results/fulltext/{slug}.done", f"logs/fulltext/{slug}.log",
         f"benchmarks/fulltext/{slug}.tsv"],
    ]


AGGREGATES = [
    ["results/index/vector/index.bin", "results/index/vector/meta.json", "logs/vector_index/vector_index.log",
     "benchmarks/vector_index/vector_index.tsv", "results/stats/fetch.tsv", "logs/fetch_stats/fetch_stats.log",
     "benchmarks/fetch_stats/fetch_stats.tsv"],
    ["results/stats/benchmarks.tsv", "logs/benchmark_table/benchmark_table.log",
     "benchmarks/benchmark_table/benchmark_table.tsv"],
]


def build_tree(root: Path, n_books: int, files_per_book: int = 3) -> Path:
    """A complete synthetic workflow directory under `root`; returns the config file to run it with.

    `files_per_book` text files per book go into a local export tree (Sefaria's ~20,000 files over ~7,000
    books is about 3); the DAG does not read them, they make the directory as large as the real one.
    """
    root.mkdir(parents=True, exist_ok=True)
    entries = synthetic_titles(n_books)
    # Newer than every script (Snakemake's code trigger), each stage newer than the one before.
    newest_script = max(p.stat().st_mtime for p in (ROOT / "scripts").glob("*.py"))
    start = max(time.time() - 30, newest_script + 1)
    catalog = root / "results" / "catalog.json"
    write_catalog(catalog, entries, "export")
    os.utime(catalog, (start, start))
    export = root / "export"
    _touch(export / "table_of_contents.json", start - 60, b"[]")
    for entry in entries:
        for k in range(files_per_book):
            lang = "Hebrew" if k % 2 == 0 else "English"
            _touch(export / "json" / Path(*entry.categories) / entry.title / lang / f"version {k}.json", start - 60,
                   b"{}")
    for stage, _ in enumerate(per_book_outputs("x"), start=1):
        for entry in entries:
            for rel in per_book_outputs(entry.slug)[stage - 1]:
                _touch(root / rel, start + 2 * stage)
    for offset, group in enumerate(AGGREGATES, start=4):
        for rel in group:
            _touch(root / rel, start + 2 * offset)
    os.utime(root / "results" / "index" / "vector", (start + 8, start + 8))
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config.update(source="export", export_url=str(export), books=[entries[0].title], categories=[])
    path = root / "scale-config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def snakemake_cmd(root: Path, config: Path, *args: str, profile: Path = ROOT / "profiles" / "default") -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(root),
            "--profile", str(profile), "--configfile", str(config), *args]


def run_timed(cmd: list[str], log: Path) -> float:
    """Seconds `cmd` took; raises with the log's tail when it fails."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return seconds


_PRODUCTS = re.compile(r"^    (?:output|log|benchmark): (.+)$", re.M)


def complete_outputs(root: Path, dry_run_log: str) -> int:
    """Create the products of jobs a dry run still plans (rules this script does not list); returns how many.

    Keeps the synthetic tree complete as aggregate rules are added to the workflow.
    """
    paths = [p for m in _PRODUCTS.finditer(dry_run_log) for p in m.group(1).split(", ")]
    mtime = time.time()
    for rel in paths:
        if not (root / rel).exists():
            _touch(root / rel, mtime)
    return len(paths)


def measure(root: Path, n_books: int, files_per_book: int) -> Timing:
    """Build an N-book tree, time the dry run and then a real run that must find nothing to do."""
    config = build_tree(root, n_books, files_per_book)
    for _ in range(3):
        dry = run_timed(snakemake_cmd(root, config, "-n"), root / "dry-run.log")
        planned = (root / "dry-run.log").read_text()
        if "Nothing to be done" in planned or not complete_outputs(root, planned):
            break
    if "Nothing to be done" not in planned:
        raise RuntimeError(f"{n_books} books: the dry run planned jobs on a complete tree:\n{planned[-3000:]}")
    noop = run_timed(snakemake_cmd(root, config, "--cores", "1"), root / "noop.log")
    if "Nothing to be done" not in (root / "noop.log").read_text():
        raise RuntimeError(f"{n_books} books: the no-op run did something")
    return Timing(n_books, dry, noop)


def growth_ratio(timings: list[Timing], attr: str = "dry_per_book_ms") -> float:
    """Per-book time at the largest N over that at the smallest: ~1 linear, >>1 superlinear."""
    small, large = min(timings, key=lambda t: t.books), max(timings, key=lambda t: t.books)
    return getattr(large, attr) / getattr(small, attr)


def format_table(timings: list[Timing]) -> str:
    lines = ["| books | dry run s | ms/book | no-op run s | ms/book |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {t.books} | {t.dry_run_s:.1f} | {t.dry_per_book_ms:.2f} | {t.noop_s:.1f} | {t.noop_per_book_ms:.2f} |"
              for t in timings]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", type=int, default=7000, help="largest catalog size")
    parser.add_argument("--sizes", default="500,1000,2000,4000", help="smaller sizes to time as well")
    parser.add_argument("--files-per-book", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.books})

    with tempfile.TemporaryDirectory(prefix="scale-dag-", dir=args.workdir) as tmp:
        timings = []
        for n in sizes:
            timings.append(measure(Path(tmp) / f"n{n}", n, args.files_per_book))
            t = timings[-1]
            print(f"{n} books: dry run {t.dry_run_s:.1f} s, no-op {t.noop_s:.1f} s", file=sys.stderr, flush=True)
    print(format_table(timings))
    dry_ratio, noop_ratio = growth_ratio(timings), growth_ratio(timings, "noop_per_book_ms")
    print(f"\nper-book time, {sizes[-1]} vs {sizes[0]} books: dry run x{dry_ratio:.2f}, no-op x{noop_ratio:.2f}"
          f" (superlinear above x{SUPERLINEAR_RATIO})")
    failures = []
    if timings[-1].dry_run_s > DRY_RUN_TARGET_S:
        failures.append(f"dry run of {sizes[-1]} books took {timings[-1].dry_run_s:.1f} s > {DRY_RUN_TARGET_S} s")
    if len(sizes) > 1 and max(dry_ratio, noop_ratio) > SUPERLINEAR_RATIO:
        failures.append("planning time grows superlinearly with the number of books")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
