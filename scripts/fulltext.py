"""Replace one book's documents in the full-text index, then write its marker file."""

import orjson

from sefaria_ingest.atomic import atomic_write_bytes
from sefaria_ingest.index.fulltext import open_backend
from sefaria_ingest.records import Chunk, read_jsonl
from sefaria_ingest.workflow import book_entry, log, run_script


def main(smk):
    config = dict(smk.config["fulltext"])
    config.setdefault("path", "results/index/fulltext")
    title = book_entry(smk).title
    chunks = list(read_jsonl(smk.input.chunks, Chunk))
    backend = open_backend(config)
    try:
        if "vectors" in smk.input.keys():  # the engine stores each embedded chunk's vector too
            from sefaria_ingest.embed import read_vectors_by_chunk  # numpy: only for the jobs that need it

            n = backend.upsert_book(title, chunks, read_vectors_by_chunk(smk.input.vectors, smk.input.ids))
        else:
            n = backend.upsert_book(title, chunks)
        indexed = backend.count(title)
    finally:
        backend.close()
    atomic_write_bytes(smk.output.done, orjson.dumps({"book": title, "documents": n, "backend": config["backend"]}))
    log.info("%s: %d documents in the %s index (%d for this book now)", title, n, config["backend"], indexed)


run_script(snakemake, main)  # noqa: F821
