rule embed:
    input:
        chunks="results/chunks/{book}.jsonl",
    output:
        vectors="results/vectors/{book}.npy",
        ids="results/vectors/{book}.ids.json",
    log:
        "logs/embed/{book}.log",
    benchmark:
        "benchmarks/embed/{book}.tsv"
    threads: 2
    resources:
        embed_jobs=1,
    script:
        "../scripts/embed.py"
