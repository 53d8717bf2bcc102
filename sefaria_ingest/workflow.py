"""Glue for scripts/: logging to the rule's log file, one-line errors naming the book, failure records."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import IO, Callable

import orjson

from .atomic import atomic_write_bytes
from .errors import IngestError

log = logging.getLogger("sefaria_ingest")
FAILED_DIR = Path("results/failed")
FAILED_SUMMARY = Path("results/failed.json")
# Held open (shared flock) for the life of each snakemake process of this workflow; see clear_stale_locks.
_RUN_LOCK: IO | None = None


def _job_book(smk) -> str:
    wildcards = getattr(smk, "wildcards", None)
    return wildcards.get("book", "") if wildcards is not None and hasattr(wildcards, "get") else ""


def failure_record_path(rule: str, book: str) -> Path:
    return FAILED_DIR / rule / f"{book or rule}.json"


def run_script(smk, step: Callable[[object], None]) -> None:
    """Run `step(snakemake)` with logging to the rule's log.

    A failure is logged as one line naming the book and cause, recorded under results/failed/ (gathered into
    results/failed.json when the run ends) and exits 1; a success clears that book's old failure record.
    A job killed before it can say why (the out-of-memory killer's SIGKILL, an interrupted run) leaves the
    "did not finish" record written before its step started, so no failed book goes unlisted.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if smk.log:
        handlers.append(logging.FileHandler(smk.log[0], mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
                        force=True)
    book = _job_book(smk)
    record = failure_record_path(smk.rule, book)
    where = f"; its log: {smk.log[0]}" if smk.log else ""
    _record_failure(record, smk.rule, book, f"{book or smk.rule}: the {smk.rule} job did not finish: killed by a "
                                            f"signal (out of memory?) or interrupted{where}")
    try:
        step(smk)
    except IngestError as exc:
        log.error("%s", exc)
        _record_failure(record, smk.rule, book, str(exc))
        sys.exit(1)
    except Exception as exc:  # the log must say which book failed and why, whatever the cause
        log.exception("%s: %s: %s", book or smk.rule, type(exc).__name__, exc)
        _record_failure(record, smk.rule, book, f"{book or smk.rule}: {type(exc).__name__}: {exc}")
        sys.exit(1)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()


def _record_failure(path: Path, rule: str, book: str, cause: str) -> None:
    with contextlib.suppress(OSError):  # a full disk must not hide the original error
        atomic_write_bytes(path, orjson.dumps({"rule": rule, "book": book, "cause": cause,
                                               "time": time.strftime("%Y-%m-%dT%H:%M:%S")}))


def gather_failures(failed_dir: Path = FAILED_DIR, summary: Path = FAILED_SUMMARY,
                    catalog: Path | None = None) -> list[dict]:
    """Collect the per-job failure records into results/failed.json (an empty list when all went well).

    With `catalog` (results/catalog.json), a book's record counts only while the book is still selected: a book
    dropped from the config after it failed is not reported again. Its record stays, for when it comes back.
    """
    selected = _catalog_slugs(catalog) if catalog is not None else None
    records = []
    if failed_dir.is_dir():
        for path in sorted(failed_dir.glob("*/*.json")):
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                record = orjson.loads(path.read_bytes())
                if selected is None or not record.get("book") or record["book"] in selected:
                    records.append(record)
    atomic_write_bytes(summary, orjson.dumps(records, option=orjson.OPT_INDENT_2))
    return records


def _catalog_slugs(catalog: Path) -> set[str] | None:
    """The slugs the catalog selects; None (no filtering) when there is no readable catalog."""
    try:
        return {book["slug"] for book in orjson.loads(catalog.read_bytes())["books"]}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None


def clear_stale_locks(state_dir: Path = Path(".snakemake")) -> list[Path]:
    """Remove Snakemake's directory locks when no other run of this workflow is alive here; returns those removed.

    A killed snakemake leaves .snakemake/locks behind and the next run would refuse to start (`--unlock` by hand).
    Every run holds a shared flock on .snakemake/sefaria_ingest/run.lock while it lives (the kernel drops it
    however the process dies), so getting it exclusively proves the locks on disk belong to dead runs.
    """
    global _RUN_LOCK
    if _RUN_LOCK is not None:
        return []
    path = state_dir / "sefaria_ingest" / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "ab")  # noqa: SIM115 (kept open on purpose)
    removed: list[Path] = []
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # another run is alive: its locks are real
    else:
        removed = sorted((state_dir / "locks").glob("*.lock"))
        for lock in removed:
            lock.unlink(missing_ok=True)
        removed += _remove_partial_writes(Path("results"))
    fcntl.flock(handle, fcntl.LOCK_SH)
    _RUN_LOCK = handle
    return removed


def _remove_partial_writes(results: Path) -> list[Path]:
    """Temp files and directories of writes a killed run never finished (never outputs: outputs are renamed)."""
    leftovers = [p for p in results.rglob(".*.tmp") if p.is_file()] if results.is_dir() else []
    index_dir = results / "index"
    if index_dir.is_dir():
        leftovers += [p for p in index_dir.glob(".vector.*") if p.is_dir()]
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers


def book_entry(smk):
    """The catalog entry for this job's {book} wildcard."""
    from .catalog import read_catalog

    slug = smk.wildcards.book
    for entry in read_catalog(smk.input.catalog):
        if entry.slug == slug:
            return entry
    raise IngestError(slug, "not in results/catalog.json (rerun the catalog step or fix the selection)")
