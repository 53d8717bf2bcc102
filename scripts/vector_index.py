"""Build the one hnswlib index over every book's vectors, with its id -> chunk metadata."""

from sefaria_ingest.index.vector import build_vector_index
from sefaria_ingest.workflow import log, run_script


def main(smk):
    config = smk.config["vector_index"]
    books = list(zip(smk.input.vectors, smk.input.ids, smk.input.chunks))
    stats = build_vector_index(books, smk.output.index, M=config["M"],
                               ef_construction=config["ef_construction"], ef_search=config["ef_search"],
                               model_name=smk.config["embed"]["model"], threads=smk.threads)
    log.info("vector index: %s", stats)


run_script(snakemake, main)  # noqa: F821
