"""Embed one book's chunks (the languages the model serves), reusing the shared embedding cache."""

from sefaria_ingest.embed import Embedder, EmbeddingCache, embed_chunks, write_book_vectors
from sefaria_ingest.records import Chunk, read_jsonl
from sefaria_ingest.workflow import log, run_script


def main(smk):
    config = smk.config["embed"]
    embedder = Embedder(config["model"], batch_size=config["batch_size"], threads=smk.threads)
    with EmbeddingCache("results/cache", config["model"]) as cache:
        ids, vectors, stats = embed_chunks(read_jsonl(smk.input.chunks, Chunk), embedder, cache, config["languages"])
    write_book_vectors(smk.output.vectors, smk.output.ids, ids, vectors)
    log.info("%s: %d chunks embedded (%d from cache, %d computed, %d other languages) in %.2f s",
             smk.wildcards.book, stats.selected, stats.cached, stats.computed, stats.skipped, stats.seconds)


run_script(snakemake, main)  # noqa: F821
