rule fetch:
    input:
        catalog=ancient("results/catalog.json"),
    output:
        segments="results/raw/{book}.jsonl",
        stats="results/stats/fetch/{book}.json",
    params:
        # What the records hold: a change refetches every book (URLs and politeness knobs stay out of params).
        content=lambda wc: {"languages": config["languages"], "versions": config["versions"]},
    log:
        "logs/fetch/{book}.log",
    benchmark:
        "benchmarks/fetch/{book}.tsv"
    resources:
        sefaria_api=fetch_resources(),
    script:
        "../scripts/fetch.py"
