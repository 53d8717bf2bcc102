"""Benchmark 3: how Snakemake's planning time grows with the catalog, up to the size of Sefaria's library.

Builds a synthetic, complete workflow directory of N books (catalog.json, every per-book output, the
aggregates, and Snakemake's provenance records as a finished run leaves them), then times `snakemake -n`
(DAG only) and a real run that must find nothing to do, for several N. Exits 1 when the largest dry run
exceeds 60 s or CPU time per book grows superlinearly.

    python benchmarks/scale_dag.py --books 7000 [--sizes 500,1000,2000,4000] [--files-per-book 3]
                                   [--variant='--rerun-triggers mtime' ...]
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sefaria_ingest.catalog import BookEntry, book_slug, read_catalog, write_catalog  # noqa: E402

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
    ["results/plots/throughput.png", "results/plots/requests.png", "results/plots/book_times.png",
     "logs/plots/plots.log", "benchmarks/plots/plots.tsv"],
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
    per_book = [per_book_outputs(entry.slug) for entry in entries]
    for stage in range(len(per_book[0])):
        for files in per_book:
            for rel in files[stage]:
                _touch(root / rel, start + 2 * (stage + 1))
    for offset, group in enumerate(AGGREGATES, start=len(per_book[0]) + 1):
        for rel in group:
            _touch(root / rel, start + 2 * offset)
        for directory in {(root / rel).parent for rel in group if rel.startswith("results/index/")}:
            os.utime(directory, (start + 2 * offset, start + 2 * offset))  # directory() outputs: the dir's mtime
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config.update(source="export", export_url=str(export), books=[entries[0].title], categories=[])
    path = root / "scale-config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def _record_path(metadata_dir: Path, target: str) -> Path:
    """Where Snakemake's file persistence keeps the record of `target` (urlsafe base64, long names split)."""
    b64 = base64.urlsafe_b64encode(target.encode()).decode()
    step = os.pathconf(metadata_dir, "PC_NAME_MAX") - 1 if metadata_dir.exists() else 254
    parts = [b64[i : i + step] for i in range(0, len(b64), step)]
    return metadata_dir.joinpath(*["@" + p for p in parts[:-1]], parts[-1])


def _read_records(metadata_dir: Path) -> dict[str, dict]:
    records = {}
    for path in metadata_dir.rglob("*"):
        if path.is_file():
            rel = path.relative_to(metadata_dir).parts
            b64 = "".join(p.removeprefix("@") for p in rel)
            records[base64.urlsafe_b64decode(b64).decode()] = orjson.loads(path.read_bytes())
    return records


def _replace(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    if isinstance(value, dict):
        return {_replace(k, old, new): _replace(v, old, new) for k, v in value.items()}
    return value


def metadata_templates(workdir: Path) -> dict[str, dict]:
    """Snakemake's own metadata records for a 2-book tree (`--touch --forceall`), to clone for N books."""
    config = build_tree(workdir, 2, 0)
    run_timed(snakemake_cmd(workdir, config, "--touch", "--forceall", "--cores", "1"), workdir / "touch.log")
    return _read_records(workdir / ".snakemake" / "metadata")


def write_metadata(root: Path, templates: dict[str, dict]) -> int:
    """Provenance records for every per-book output and the catalog, as a finished run leaves them.

    The few aggregate jobs are left without records: their cost does not grow with the number of books.
    """
    template_slug, other_slug = (e.slug for e in synthetic_titles(2))
    books = [e.slug for e in read_catalog(root / "results" / "catalog.json")]
    metadata = root / ".snakemake" / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    written = 0
    for target, record in templates.items():
        if template_slug in target:
            clones = [(_replace(target, template_slug, b), _replace(record, template_slug, b)) for b in books]
        elif other_slug in target or record["rule"] != "catalog":
            continue
        else:
            clones = [(target, record)]
        for clone_target, clone in clones:
            path = _record_path(metadata, clone_target)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(orjson.dumps(clone))
            written += 1
    return written


def snakemake_cmd(root: Path, config: Path, *args: str, profile: Path = ROOT / "profiles" / "default") -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(root),
            "--profile", str(profile), "--configfile", str(config), *args]


@dataclass(slots=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system of the snakemake process: steadier than wall time on a busy machine
    output: str


def run_timed(cmd: list[str], log: Path, timeout: float = 1800) -> Run:
    """Run `cmd` with its output in `log`; raises with the log's tail when it fails or outlives `timeout`."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # wait4, not wait: it returns the child's CPU time
        finally:
            killer.cancel()
    wall = time.perf_counter() - started
    output = log.read_text(encoding="utf-8")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        why = f"killed after {timeout:.0f} s" if wall >= timeout else f"exit {code}"
        raise RuntimeError(f"{' '.join(cmd[3:])} failed ({why}):\n{output[-3000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, output)


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


@dataclass(slots=True)
class Timing:
    books: int
    dry: Run
    noop: Run


def measure(root: Path, n_books: int, files_per_book: int, templates: dict[str, dict],
            extra: tuple[str, ...] = (), repeat: int = 1) -> Timing:
    """Build a complete N-book tree, time the dry run, then a real run that must find nothing to do.

    With `repeat` > 1 each is run that often and the run with the least CPU time is kept (the least disturbed).
    """
    config = build_tree(root, n_books, files_per_book)
    write_metadata(root, templates)
    for _ in range(3):
        dry = run_timed(snakemake_cmd(root, config, "-n", *extra), root / "dry-run.log")
        if "Nothing to be done" in dry.output or not complete_outputs(root, dry.output):
            break
    if "Nothing to be done" not in dry.output:
        raise RuntimeError(f"{n_books} books: the dry run plans jobs on a complete tree:\n{dry.output[-3000:]}")
    for _ in range(repeat - 1):
        dry = min(dry, run_timed(snakemake_cmd(root, config, "-n", *extra), root / "dry-run.log"),
                  key=lambda r: r.cpu_s)
    noops = [run_timed(snakemake_cmd(root, config, "--cores", "1", *extra), root / "noop.log") for _ in range(repeat)]
    for noop in noops:
        if "Nothing to be done" not in noop.output:
            raise RuntimeError(f"{n_books} books: the no-op run did something:\n{noop.output[-3000:]}")
    return Timing(n_books, dry, min(noops, key=lambda r: r.cpu_s))


def per_book_ms(t: Timing, base: Timing, run: str = "dry") -> float:
    """CPU milliseconds each book adds over a one-book tree (Snakemake's fixed start-up cost taken out)."""
    return 1000 * (getattr(t, run).cpu_s - getattr(base, run).cpu_s) / (t.books - base.books)


def growth_ratio(timings: list[Timing], base: Timing, run: str = "dry") -> float:
    """Per-book cost at the largest N over that at the smallest: ~1 when linear, about N_max/N_min when quadratic."""
    return per_book_ms(timings[-1], base, run) / per_book_ms(timings[0], base, run)


def format_table(timings: list[Timing], base: Timing) -> str:
    lines = ["| books | dry run s | dry run CPU s | CPU ms/book | no-op run s | no-op CPU s | CPU ms/book |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for t in [base, *timings]:
        dry_ms = f"{per_book_ms(t, base):.2f}" if t is not base else "(base)"
        noop_ms = f"{per_book_ms(t, base, 'noop'):.2f}" if t is not base else "(base)"
        lines.append(f"| {t.books} | {t.dry.wall_s:.1f} | {t.dry.cpu_s:.1f} | {dry_ms} "
                     f"| {t.noop.wall_s:.1f} | {t.noop.cpu_s:.1f} | {noop_ms} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", type=int, default=7000, help="largest catalog size (the dry-run target applies)")
    parser.add_argument("--sizes", default="500,1000,2000,4000", help="smaller sizes to time as well")
    parser.add_argument("--files-per-book", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the least disturbed one counts")
    parser.add_argument("--variant", action="append", default=[], metavar="ARGS",
                        help="also time the largest N with these extra snakemake arguments "
                             "(--variant='--rerun-triggers mtime')")
    parser.add_argument("--workdir", type=Path, default=None, help="where the scratch trees go (default: /tmp)")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.books})
    with tempfile.TemporaryDirectory(prefix="scale-dag-", dir=args.workdir) as tmp:
        templates = metadata_templates(Path(tmp) / "template")
        base = measure(Path(tmp) / "n1", 1, args.files_per_book, templates, repeat=max(2, args.repeat))
        timings = []
        for n in sizes:
            timings.append(measure(Path(tmp) / f"n{n}", n, args.files_per_book, templates, repeat=args.repeat))
            t = timings[-1]
            print(f"{n} books: dry run {t.dry.wall_s:.1f} s, no-op {t.noop.wall_s:.1f} s "
                  f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)", file=sys.stderr, flush=True)
        variants = [(v, measure(Path(tmp) / f"variant{i}", sizes[-1], args.files_per_book, templates, tuple(v.split())))
                    for i, v in enumerate(args.variant)]
    print(format_table(timings, base))
    for flags, t in variants:
        print(f"\n{t.books} books with `{flags}`: dry run {t.dry.wall_s:.1f} s ({t.dry.cpu_s:.1f} s CPU), "
              f"no-op {t.noop.wall_s:.1f} s ({t.noop.cpu_s:.1f} s CPU)")
    failures = []
    if len(timings) > 1:
        dry_ratio, noop_ratio = growth_ratio(timings, base), growth_ratio(timings, base, "noop")
        print(f"\nCPU per book, {sizes[-1]} vs {sizes[0]} books: dry run x{dry_ratio:.2f}, no-op x{noop_ratio:.2f}"
              f" (linear: ~1; superlinear above x{SUPERLINEAR_RATIO})")
        if max(dry_ratio, noop_ratio) > SUPERLINEAR_RATIO:
            failures.append("planning time grows superlinearly with the number of books")
    if timings[-1].dry.wall_s > DRY_RUN_TARGET_S:
        failures.append(f"dry run of {sizes[-1]} books took {timings[-1].dry.wall_s:.1f} s > {DRY_RUN_TARGET_S:.0f} s "
                        f"({timings[-1].dry.cpu_s:.1f} s of it CPU; other load slows it down)")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
