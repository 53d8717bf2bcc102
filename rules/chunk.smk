rule chunk:
    input:
        segments="results/raw/{book}.jsonl",
    output:
        chunks="results/chunks/{book}.jsonl",
    log:
        "logs/chunk/{book}.log",
    benchmark:
        "benchmarks/chunk/{book}.tsv"
    script:
        "../scripts/chunk.py"
