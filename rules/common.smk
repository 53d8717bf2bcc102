# Shared Python for the rules: config validation, the book list from the catalog checkpoint, input functions.

import sys
from pathlib import Path

import orjson

from sefaria_ingest.config import uses_network, validate_or_exit
from sefaria_ingest.workflow import clear_stale_locks

validate_or_exit(config)

# Only the main snakemake process: job processes (a cluster's, say) must never touch the run's own locks.
if workflow.is_main_process and clear_stale_locks():
    print("sefaria-ingest: removed locks and partial files left by a killed run (no other run is alive here)",
          file=sys.stderr)


wildcard_constraints:
    book=r"[^/]+",


def catalog_books():
    """Slugs of the books in the catalog (waits for the catalog checkpoint)."""
    path = checkpoints.catalog.get().output.catalog
    with open(path, "rb") as fh:
        return [b["slug"] for b in orjson.loads(fh.read())["books"]]


def engine_stores_vectors():
    """Elasticsearch/OpenSearch with `fulltext.vector_dims` set keep each chunk's vector beside its text."""
    return config["fulltext"]["backend"] != "tantivy" and bool(config["fulltext"].get("vector_dims"))


def fulltext_vectors(wildcards):
    """The book's vectors for the fulltext rule, when the engine stores them."""
    if not engine_stores_vectors():
        return {}
    return {"vectors": f"results/vectors/{wildcards.book}.npy", "ids": f"results/vectors/{wildcards.book}.ids.json"}


def fulltext_target():
    """Which engine and index hold the documents, and whether with vectors: a change re-indexes every book."""
    target = {k: config["fulltext"].get(k) for k in ("backend", "url", "index")}
    if engine_stores_vectors():
        target["vector_dims"] = config["fulltext"]["vector_dims"]
    return target


def fetch_resources():
    """Fetches over the network count against the global `sefaria_api` cap; a local export does not."""
    return 1 if uses_network(config) else 0


def all_outputs(wildcards):
    books = catalog_books()
    return [
        "results/index/vector",
        *expand("results/raw/{book}.jsonl", book=books),
        *expand("results/chunks/{book}.jsonl", book=books),
        *expand("results/fulltext/{book}.done", book=books),
        "results/stats/fetch.tsv",
        "results/stats/benchmarks.tsv",
        "results/plots/throughput.png",
    ]


def report_failures(success):
    """At the end of a run: results/failed.json, and one line per failed book on the terminal."""
    from sefaria_ingest.workflow import gather_failures

    failures = gather_failures(catalog=Path("results/catalog.json"))
    for f in failures:
        print(f"sefaria-ingest: FAILED {f['rule']}: {f['cause']}", file=sys.stderr)
    if failures:
        print(f"sefaria-ingest: {len(failures)} failed job(s) listed in results/failed.json; "
              "fix the cause and rerun the same command to redo only those.", file=sys.stderr)
