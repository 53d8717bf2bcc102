"""End to end: the real `snakemake` over a few small sample books, through both sources.

Checks the outputs and search, that a second run does nothing, and that deleting one book's raw file
reruns only that book's jobs (plus the aggregates).
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from sefaria_ingest.export_tree import ExportTree
from sefaria_ingest.schema import iter_segments, parse_index, text_at
from sefaria_ingest.search import search

from .workflow_helpers import executed_jobs, read_jsonl, run_snakemake, write_config

pytestmark = pytest.mark.slow
BOOKS = ["Jonah", "Pirkei Avot"]


def expected_segments(sample_dir, title: str) -> int:
    """Non-empty segments of a book in both languages, counted from the export files directly."""
    tree = ExportTree(sample_dir)
    root = parse_index(tree.index(title), book=title)
    return sum(1 for v in tree.versions(title) for leaf in root.leaves()
               for _, text in iter_segments(leaf, text_at(leaf, v.text)) if text.strip())


@pytest.fixture(scope="module")
def export_run(tmp_path_factory, sample_dir):
    """One full workflow run over the local sample export; the directory is reused by the tests below."""
    work = tmp_path_factory.mktemp("export-run")
    config = write_config(work, source="export", export_url=str(sample_dir), books=BOOKS)
    run = run_snakemake(work, config, "--cores", "2")
    assert run.returncode == 0, run.stderr[-4000:]
    return work, config


def test_outputs_cover_every_segment(export_run, sample_dir):
    work, _ = export_run
    for title in BOOKS:
        slug = title.replace(" ", "_")
        raw = read_jsonl(work / "results" / "raw" / f"{slug}.jsonl")
        assert len(raw) == expected_segments(sample_dir, title)
        refs = Counter((r["lang"], r["ref"]) for r in raw)
        assert max(refs.values()) == 1, "a segment arrived twice"
        chunks = read_jsonl(work / "results" / "chunks" / f"{slug}.jsonl")
        covered = {(c["lang"], ref) for c in chunks for ref in c["refs"]}
        assert covered == set(refs)
        assert len({c["id"] for c in chunks}) == len(chunks)
        assert (work / "results" / "vectors" / f"{slug}.npy").exists()
        assert (work / "results" / "fulltext" / f"{slug}.done").exists()
    fetch_table = (work / "results" / "stats" / "fetch.tsv").read_text()
    assert "Jonah" in fetch_table and "Pirkei Avot" in fetch_table
    assert "fetch\tJonah" in (work / "results" / "stats" / "benchmarks.tsv").read_text()


@pytest.mark.parametrize("mode", ["bm25", "vector", "hybrid"])
def test_search_finds_a_known_verse(export_run, mode):
    work, _ = export_run
    hits = search(work / "results", "Jonah was in the belly of the fish three days and three nights", k=5, mode=mode)
    assert hits, mode
    assert any(h.book == "Jonah" and h.ref.startswith("Jonah 2") for h in hits[:3]), [h.ref for h in hits]


def test_hebrew_query_without_niqqud_matches(export_run):
    work, _ = export_run
    hits = search(work / "results", "ויהי יונה במעי הדגה", k=3, mode="bm25", lang="he")
    assert hits and hits[0].ref.startswith("Jonah 2")


def test_second_run_does_nothing_and_a_deleted_raw_file_reruns_only_its_book(export_run):
    work, config = export_run
    dry = run_snakemake(work, config, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr

    (work / "results" / "raw" / "Jonah.jsonl").unlink()
    rerun = run_snakemake(work, config, "--cores", "2")
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    jobs = executed_jobs(rerun.stdout + rerun.stderr)
    per_book = {(rule, book) for rule, book in jobs if book}
    assert per_book == {("fetch", "Jonah"), ("chunk", "Jonah"), ("embed", "Jonah"), ("fulltext", "Jonah")}, jobs
    assert {rule for rule, book in jobs if not book} <= {"vector_index", "fetch_stats", "benchmark_table", "plots", "all"}


def test_api_source_through_the_replica_gives_the_same_raw_records(export_run, replica, tmp_path):
    work, _ = export_run
    config = write_config(tmp_path, source="api", api_url=replica, books=["Jonah"])
    run = run_snakemake(tmp_path, config, "--cores", "2", "results/chunks/Jonah.jsonl")
    assert run.returncode == 0, run.stderr[-4000:]
    api_raw = (tmp_path / "results" / "raw" / "Jonah.jsonl").read_bytes()
    assert api_raw == (work / "results" / "raw" / "Jonah.jsonl").read_bytes()
    stats = orjson.loads((tmp_path / "results" / "stats" / "fetch" / "Jonah.json").read_bytes())
    assert stats["requests"] >= 2 and stats["segments"] == api_raw.count(b"\n")


def test_report_builds_with_benchmarks_fetch_stats_and_plots(export_run):
    work, config = export_run
    for png in ("throughput", "requests", "book_times"):
        assert (work / "results" / "plots" / f"{png}.png").stat().st_size > 1000
    run = run_snakemake(work, config, "--report", "results/report.html")
    assert run.returncode == 0, run.stderr[-3000:]
    html = (work / "results" / "report.html").read_text(errors="replace")
    for name in ("benchmarks.tsv", "fetch.tsv", "throughput.png", "requests.png", "book_times.png"):
        assert name in html, name


def test_changing_languages_refetches_and_another_fulltext_index_reindexes(export_run, sample_dir, tmp_path):
    work, _ = export_run
    other = write_config(tmp_path, source="export", export_url=str(sample_dir), books=BOOKS, languages=["en"])
    dry = run_snakemake(work, other, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert {b for r, b in executed_jobs(dry.stdout) if r == "fetch"} == {"Jonah", "Pirkei_Avot"}
    other = write_config(tmp_path, source="export", export_url=str(sample_dir), books=BOOKS,
                         fulltext={"backend": "tantivy", "index": "another"})
    dry = run_snakemake(work, other, "-n")
    jobs = executed_jobs(dry.stdout)
    assert {b for r, b in jobs if r == "fulltext"} == {"Jonah", "Pirkei_Avot"}
    assert not any(r in ("fetch", "chunk", "embed") for r, _ in jobs), jobs
