"""Running the real Snakemake workflow in a scratch directory, as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def write_config(workdir: Path, **overrides) -> Path:
    """A full config (the shipped one plus `overrides`) written into `workdir`."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config.update(overrides)
    path = workdir / "test-config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def run_snakemake(workdir: Path, config: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`snakemake` with the project's Snakefile and default profile, run in `workdir`."""
    cmd = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--profile", str(ROOT / "profiles" / "default"), "--configfile", str(config), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)


_JOB = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$", re.M)
_BOOK = re.compile(r"^\s+wildcards:.*?\bbook=([^,\n]+)", re.M)


def executed_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, book wildcard or "") for every job a Snakemake run (or dry run) lists, from its output."""
    starts = list(_JOB.finditer(output))
    jobs = []
    for i, m in enumerate(starts):
        block = output[m.end() : starts[i + 1].start() if i + 1 < len(starts) else len(output)]
        book = _BOOK.search(block)
        jobs.append((m.group(1), book.group(1).strip() if book else ""))
    return jobs


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
