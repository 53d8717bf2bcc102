checkpoint catalog:
    output:
        catalog="results/catalog.json",
    log:
        "logs/catalog/catalog.log",
    benchmark:
        "benchmarks/catalog/catalog.tsv"
    resources:
        sefaria_api=fetch_resources(),
    script:
        "../scripts/catalog.py"
