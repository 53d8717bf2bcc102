"""Fetch one book: results/raw/{book}.jsonl and its statistics."""

import asyncio

from sefaria_ingest.config import client_config, fetch_base, fetch_options
from sefaria_ingest.fetch import fetch_book, summary_line, write_book
from sefaria_ingest.workflow import book_entry, log, run_script


def main(smk):
    entry = book_entry(smk)
    config = smk.config
    result = asyncio.run(fetch_book(entry.title, source=config["source"], base_url=fetch_base(config),
                                    client_config=client_config(config), options=fetch_options(config)))
    write_book(result, smk.output.segments, smk.output.stats)
    log.info("%s", summary_line(result.stats))


run_script(snakemake, main)  # noqa: F821
