rule fetch:
    input:
        catalog=ancient("results/catalog.json"),
    output:
        segments="results/raw/{book}.jsonl",
        stats="results/stats/fetch/{book}.json",
    log:
        "logs/fetch/{book}.log",
    benchmark:
        "benchmarks/fetch/{book}.tsv"
    resources:
        sefaria_api=fetch_resources(),
    script:
        "../scripts/fetch.py"
