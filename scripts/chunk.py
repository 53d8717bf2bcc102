"""Chunk one book: results/raw/{book}.jsonl -> results/chunks/{book}.jsonl."""

import time

from sefaria_ingest.chunk import chunk_segments
from sefaria_ingest.records import Segment, read_jsonl, write_jsonl
from sefaria_ingest.tokens import TokenCounter
from sefaria_ingest.workflow import log, run_script


def main(smk):
    config = smk.config
    counter = TokenCounter(config["embed"]["model"])
    max_tokens = min(config["chunk"]["max_tokens"], counter.max_tokens)
    started = time.perf_counter()
    segments = list(read_jsonl(smk.input.segments, Segment))
    n = write_jsonl(smk.output.chunks, chunk_segments(segments, counter, max_tokens))
    seconds = time.perf_counter() - started
    log.info("%s: %d segments -> %d chunks (max %d tokens) in %.2f s",
             smk.wildcards.book, len(segments), n, max_tokens, seconds)


run_script(snakemake, main)  # noqa: F821
