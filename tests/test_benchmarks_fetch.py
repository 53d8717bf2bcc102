"""Benchmark 1 harness: the two old designs and ours account for every segment, and the command fails on a miss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sefaria_ingest.export_tree import ExportTree
from sefaria_ingest.replica import ReplicaThread

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))

from baseline_processes import run_processes  # noqa: E402
from baseline_threads import run_threads  # noqa: E402
from benchcount import BookOutcome, Tally, book_specs, expected_segments, tally  # noqa: E402
from compare_fetch import (DesignRun, Limits, check_targets, load_ours, load_workflow, run_ours,  # noqa: E402
                           run_workflow)

BOOKS = ["Ruth", "Jonah", "Tanya", "Berakhot"]


@pytest.fixture(scope="module")
def fast_replica(sample_dir):
    """A replica with a little latency, so requests overlap the way they do against a far server."""
    with ReplicaThread(sample_dir, latency_ms=2) as url:
        yield url


@pytest.fixture(scope="module")
def specs(sample_dir):
    return book_specs(sample_dir, BOOKS)


@pytest.fixture(scope="module")
def expected(sample_dir):
    return expected_segments(sample_dir)


@pytest.fixture(scope="module")
def ours(fast_replica, specs, tmp_path_factory) -> list[BookOutcome]:
    work = tmp_path_factory.mktemp("ours")
    outcomes = run_ours(fast_replica, specs, jobs=2, limits=Limits(50.0, 5, 50), workdir=work)
    load_ours(outcomes, work)
    return outcomes


def _keys(outcomes: list[BookOutcome]) -> set:
    return {key for o in outcomes for key in o.keys}


def _top_sections(sample_dir, title: str) -> int:
    return ExportTree(sample_dir).index(title)["schema"]["lengths"][0]


def test_expected_counts_come_from_count_py(expected, sample_dir):
    # Ruth and Jonah have every verse in Hebrew and in English: twice the segments their schemas count.
    for title in ("Ruth", "Jonah"):
        assert expected[title] == 2 * ExportTree(sample_dir).index(title)["schema"]["lengths"][-1]


def test_ours_loses_and_duplicates_nothing(ours, expected):
    per_book, total = tally(ours, expected)
    assert [o.error for o in ours] == [None] * len(BOOKS)
    assert {b: (t.lost, t.duplicated) for b, t in per_book.items()} == {b: (0, 0) for b in BOOKS}
    assert total.unique == sum(expected[b] for b in BOOKS)
    # One index request and one text request per leaf node: Ruth, Jonah, Berakhot have one leaf each.
    assert {o.book: o.requests for o in ours if o.book != "Tanya"} == {"Ruth": 2, "Jonah": 2, "Berakhot": 2}


@pytest.mark.slow
def test_the_whole_snakemake_command_gets_what_ours_gets(fast_replica, specs, expected, ours, tmp_path):
    outcomes = run_workflow(fast_replica, specs, jobs=2, limits=Limits(50.0, 5, 50), workdir=tmp_path,
                            global_rps=100.0)
    load_workflow(outcomes, tmp_path)
    assert [o.error for o in outcomes] == [None] * len(BOOKS)
    per_book, _ = tally(outcomes, expected)
    assert {b: (t.lost, t.duplicated) for b, t in per_book.items()} == {b: (0, 0) for b in BOOKS}
    assert _keys(outcomes) == _keys(ours)
    assert {o.book: o.requests for o in outcomes} == {o.book: o.requests for o in ours}
    # The run went through the workflow's own rules: its benchmark files are there.
    assert sorted(p.name for p in (tmp_path / "benchmarks" / "fetch").iterdir()) == \
        sorted(f"{b}.tsv" for b in BOOKS)


def test_w_is_held_to_zero_loss_but_not_to_the_speedup():
    base = DesignRun("b", "", [], 10.0, {}, total=Tally(1000, 1000, 1000))
    slow = DesignRun("w", "", [], 5.0, {}, total=Tally(1000, 1000, 1000))
    assert check_targets({"b": base, "w": slow}, 10.0) == []
    lossy = DesignRun("w", "", [], 5.0, {}, total=Tally(1001, 1000, 1000))
    assert len(check_targets({"b": base, "w": lossy}, 10.0)) == 1


def test_naive_threads_walk_next_and_lose_complex_books(fast_replica, specs, expected, ours, sample_dir):
    outcomes = run_threads(fast_replica, specs)
    per_book, _ = tally(outcomes, expected)
    by_book = {o.book: o for o in outcomes}
    for title in ("Ruth", "Jonah", "Berakhot"):
        assert (per_book[title].lost, per_book[title].duplicated) == (0, 0), title
    # A walk asks once per section with text; Ruth and Jonah also ask once for `1:1`, whose section follows.
    assert by_book["Ruth"].requests == _top_sections(sample_dir, "Ruth") + 1
    assert by_book["Berakhot"].requests == _top_sections(sample_dir, "Berakhot") - 2  # daf 2a on, 1a-1b empty
    # The complex book has no "Tanya 1:1": the old design lost all of it.
    assert "Could not find title" in by_book["Tanya"].error
    assert (per_book["Tanya"].unique, per_book["Tanya"].lost) == (0, expected["Tanya"])
    # Whatever the old design numbered, it numbered as our fetch does.
    assert _keys(outcomes) <= _keys(ours)


def test_naive_threads_stop_at_the_time_cap(fast_replica, specs):
    outcomes = run_threads(fast_replica, specs, time_cap=0)
    assert [(o.requests, len(o.keys)) for o in outcomes] == [(0, 0)] * len(specs)
    assert all("time cap" in o.error for o in outcomes)


def test_processes_fetch_every_section_twice(fast_replica, specs, expected, ours, sample_dir):
    outcomes = run_processes(fast_replica, specs, processes=2, requests_per_second=200.0, burst=10)
    per_book, _ = tally(outcomes, expected)
    by_book = {o.book: o for o in outcomes}
    for title in ("Ruth", "Jonah"):
        sections = _top_sections(sample_dir, title)
        assert by_book[title].requests == 2 * sections + 1, title
        assert (per_book[title].lost, per_book[title].duplicated) == (0, 0), title
    assert by_book["Berakhot"].requests == 2 * (_top_sections(sample_dir, "Berakhot") - 2)
    assert per_book["Tanya"].lost == expected["Tanya"]
    assert _keys(outcomes) <= _keys(ours)


def test_targets_are_checked_against_b():
    def run(unique: int, wall: float, expected: int | None = None, obtained: int | None = None) -> DesignRun:
        expected = unique if expected is None else expected
        return DesignRun("x", "", [], wall, {"peak_requests_per_second": 5},
                         total=Tally(expected, unique if obtained is None else obtained, unique))

    base = run(1000, 10.0, expected=1200)
    assert check_targets({"b": base, "c": run(1000, 0.5)}, 10.0) == []
    assert len(check_targets({"b": base, "c": run(1000, 2.0)}, 10.0)) == 1  # 5x
    assert len(check_targets({"b": base, "c": run(1000, 0.5, expected=1001)}, 10.0)) == 1  # one lost
    assert len(check_targets({"b": base, "c": run(1000, 0.5, obtained=1001)}, 10.0)) == 1  # one duplicated
    over = run(1000, 0.5)
    over.budget = 4.0
    assert check_targets({"b": base, "c_global": over}, 10.0) == []  # peak 5: a budget of 4 plus its burst of 1
    over.budget = 3.0
    assert len(check_targets({"b": base, "c_global": over}, 10.0)) == 1  # peak 5 over 3 + 1


def test_command_prints_the_table_and_fails_on_a_missed_target():
    cmd = [sys.executable, str(BENCH / "compare_fetch.py"), "--latency-ms", "0", "--books", "Ruth", "Jonah",
           "--designs", "b,c", "--processes", "2", "--rps", "100", "--burst", "10", "--min-speedup", "1e9"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("| (")]
    assert [row.split("|")[1].strip() for row in table[:3]] == [
        "(b) processes", "(c) ours, per-job limits", "(c) ours, same global budget"]
    assert [(row.split("|")[9].strip(), row.split("|")[10].strip()) for row in table[1:3]] == [("0", "0")] * 2
    assert "TARGETS MISSED" in proc.stdout and "target 1e+09x" in proc.stdout


@pytest.mark.benchmark_full
def test_full_benchmark_meets_its_targets():
    """Benchmark 1 as README runs it (about 45 s): deselected by default, `pytest -m benchmark_full` runs it."""
    proc = subprocess.run([sys.executable, str(BENCH / "compare_fetch.py"), "--latency-ms", "50"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
