"""Fetch one book: results/raw/{book}.jsonl and its statistics."""

import asyncio

from sefaria_ingest.config import client_config, fetch_base, fetch_options
from sefaria_ingest.fetch import fetch_book, summary_line, write_book
from sefaria_ingest.global_limit import DEFAULT_STATE_PATH, make_global_limiter
from sefaria_ingest.workflow import book_entry, log, run_script


def main(smk):
    entry = book_entry(smk)
    config = smk.config
    # One request budget shared by every fetch job on this machine, on top of each job's own limit.
    shared = make_global_limiter(config["fetch"]["global_requests_per_second"], DEFAULT_STATE_PATH)
    result = asyncio.run(fetch_book(entry.title, source=config["source"], base_url=fetch_base(config),
                                    client_config=client_config(config), options=fetch_options(config),
                                    limiters=[shared] if shared else []))
    write_book(result, smk.output.segments, smk.output.stats)
    log.info("%s", summary_line(result.stats))


run_script(snakemake, main)  # noqa: F821
