"""Glue for scripts/: logging to the rule's log file and one-line errors naming the book."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from .errors import IngestError

log = logging.getLogger("sefaria_ingest")


def run_script(smk, step: Callable[[object], None]) -> None:
    """Run `step(snakemake)` with logging to the rule's log; an IngestError becomes one line and exit 1."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if smk.log:
        handlers.append(logging.FileHandler(smk.log[0], mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
                        force=True)
    try:
        step(smk)
    except IngestError as exc:
        log.error("%s", exc)
        sys.exit(1)
    except Exception as exc:  # the log must say which book failed and why, whatever the cause
        book = getattr(smk, "wildcards", {}).get("book", "?") if hasattr(smk, "wildcards") else "?"
        log.exception("%s: %s: %s", book, type(exc).__name__, exc)
        sys.exit(1)


def book_entry(smk):
    """The catalog entry for this job's {book} wildcard."""
    from .catalog import read_catalog

    slug = smk.wildcards.book
    for entry in read_catalog(smk.input.catalog):
        if entry.slug == slug:
            return entry
    raise IngestError(slug, "not in results/catalog.json (rerun the catalog step or fix the selection)")
