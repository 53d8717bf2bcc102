"""Catalog checkpoint: table of contents (cached) + config selection -> results/catalog.json."""

import asyncio
from pathlib import Path

import orjson

from sefaria_ingest.atomic import atomic_write_bytes
from sefaria_ingest.catalog import cache_is_fresh, fetch_toc, select_books, write_catalog
from sefaria_ingest.config import client_config, fetch_base
from sefaria_ingest.workflow import log, run_script


def main(smk):
    config = smk.config
    source, base = config["source"], fetch_base(config)
    cache = Path("results/cache") / f"toc-{source}.json"
    if cache_is_fresh(cache, config["fetch"]["toc_cache_hours"]):
        toc = orjson.loads(cache.read_bytes())
        log.info("table of contents from cache %s", cache)
    else:
        toc = asyncio.run(fetch_toc(source, base, client_config(config)))
        atomic_write_bytes(cache, orjson.dumps(toc))
        log.info("table of contents fetched from %s", base)
    entries = select_books(toc, config.get("books", []), config.get("categories", []))
    write_catalog(smk.output.catalog, entries, source)
    log.info("catalog: %d books", len(entries))


run_script(snakemake, main)  # noqa: F821 (injected by Snakemake)
