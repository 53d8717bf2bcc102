rule fulltext:
    input:
        chunks="results/chunks/{book}.jsonl",
        catalog=ancient("results/catalog.json"),
    output:
        done="results/fulltext/{book}.done",
    params:
        # Which engine and index hold the documents: pointing elsewhere re-indexes every book.
        target=lambda wc: {k: config["fulltext"].get(k) for k in ("backend", "url", "index")},
    log:
        "logs/fulltext/{book}.log",
    benchmark:
        "benchmarks/fulltext/{book}.tsv"
    resources:
        fulltext_writer=1,
    script:
        "../scripts/fulltext.py"


rule vector_index:
    input:
        vectors=lambda wc: expand("results/vectors/{book}.npy", book=catalog_books()),
        ids=lambda wc: expand("results/vectors/{book}.ids.json", book=catalog_books()),
        chunks=lambda wc: expand("results/chunks/{book}.jsonl", book=catalog_books()),
    output:
        index=directory("results/index/vector"),
    log:
        "logs/vector_index/vector_index.log",
    benchmark:
        "benchmarks/vector_index/vector_index.tsv"
    threads: 2
    script:
        "../scripts/vector_index.py"
