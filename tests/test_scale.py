"""Benchmark 3 at test size: DAG planning grows linearly with the catalog, and the SLURM profile plans the workflow.

The synthetic trees come from benchmarks/scale_dag.py: complete outputs and Snakemake provenance records for N
books, so a dry run and a real run must both find nothing to do.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

from sefaria_ingest.catalog import book_slug

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from scale_dag import (  # noqa: E402
    build_tree,
    growth_ratio,
    measure,
    metadata_templates,
    run_timed,
    snakemake_cmd,
    synthetic_titles,
)

SLURM_PROFILE = REPO / "profiles" / "slurm"


def test_synthetic_titles_look_like_sefaria_and_give_distinct_file_names():
    entries = synthetic_titles(1500)
    titles = [e.title for e in entries]
    assert len(set(titles)) == len(titles)
    assert len({e.slug for e in entries}) == len(entries)
    assert all(e.slug == book_slug(e.title) for e in entries)
    assert any("," in t for t in titles) and any("'" in t for t in titles) and any(" " in t for t in titles)
    assert any(re.search("[\u0590-\u05ff]", t) for t in titles), "no Hebrew title"


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return metadata_templates(tmp_path_factory.mktemp("template"))


@pytest.mark.slow
def test_dry_run_and_noop_grow_linearly_with_books(tmp_path, templates):
    """CPU per book (over a 1-book tree) at 2000 books within 1.5x of that at 250.

    Linear planning measures x1.1-1.3 here; one catalog read per fetch job (O(N) each, O(N^2) in all) x1.8.
    """
    base = measure(tmp_path / "n1", 1, 0, templates, repeat=2)
    timings = [measure(tmp_path / f"n{n}", n, 0, templates, repeat=2) for n in (250, 2000)]
    for t in timings:  # per-book jobs carry provenance records, as after a real run
        missing = re.search(r"Rules with missing metadata: (.*)", t.dry.output)
        assert not missing or not {"fetch", "chunk", "embed", "fulltext"} & set(missing.group(1).split())
    dry, noop = growth_ratio(timings, base), growth_ratio(timings, base, "noop")
    assert dry < 1.5, f"dry run CPU per book grew x{dry:.2f} from 250 to 2000 books"
    assert noop < 1.5, f"no-op run CPU per book grew x{noop:.2f} from 250 to 2000 books"


def _jobs_by_rule(output: str) -> dict[str, int]:
    stats = output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def _job_blocks(output: str, rule: str) -> list[str]:
    return re.findall(rf"^\s*rule {rule}:\n(?:\s+\w+: .*\n)+", output, re.M)


@pytest.mark.slow
def test_slurm_profile_plans_grouped_jobs_and_a_gpu_for_embedding(tmp_path):
    assert importlib.util.find_spec("snakemake_executor_plugin_slurm"), \
        "snakemake-executor-plugin-slurm is not installed (profiles/slurm needs it even for a dry run)"
    books = 3
    config = build_tree(tmp_path, books, 0)
    for stage in ("raw", "chunks", "vectors", "fulltext", "stats", "index", "plots"):
        shutil.rmtree(tmp_path / "results" / stage, ignore_errors=True)  # every job is planned
    cmd = snakemake_cmd(tmp_path, config, "-n", "--workflow-profile", "none", profile=SLURM_PROFILE)
    run = run_timed(cmd, tmp_path / "slurm-dry-run.log")
    assert "workflow specific profile" not in run.output
    jobs = _jobs_by_rule(run.output)
    assert {rule: jobs.get(rule) for rule in ("fetch", "chunk", "embed", "fulltext")} == \
        {"fetch": books, "chunk": books, "embed": books, "fulltext": books}
    for group in ("text", "embed", "fulltext"):
        assert f"Group job {group} " in run.output, f"no {group} group job planned"
    embed = _job_blocks(run.output, "embed")
    assert embed and all("gpu=1" in b and "slurm_partition=gpu" in b for b in embed), embed[:1]
    fetch = _job_blocks(run.output, "fetch")
    assert fetch and not any("gpu=" in b for b in fetch)
    assert all("slurm_partition=cpu" in b for b in fetch)
