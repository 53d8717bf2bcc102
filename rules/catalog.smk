checkpoint catalog:
    output:
        catalog="results/catalog.json",
    params:
        # What the catalog is made of: a changed selection rebuilds it (URLs and knobs stay out of params).
        selection=lambda wc: {"source": config["source"], "books": config.get("books", []),
                              "categories": config.get("categories", [])},
    log:
        "logs/catalog/catalog.log",
    benchmark:
        "benchmarks/catalog/catalog.tsv"
    resources:
        sefaria_api=fetch_resources(),
    script:
        "../scripts/catalog.py"
