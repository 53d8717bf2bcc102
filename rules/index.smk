rule fulltext:
    input:
        unpack(fulltext_vectors),
        chunks="results/chunks/{book}.jsonl",
        catalog=ancient("results/catalog.json"),
    output:
        done="results/fulltext/{book}.done",
    params:
        target=lambda wc: fulltext_target(),
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
