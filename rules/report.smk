report: "../report/workflow.rst"


rule fetch_stats:
    input:
        stats=lambda wc: expand("results/stats/fetch/{book}.json", book=catalog_books()),
    output:
        table=report("results/stats/fetch.tsv", caption="../report/fetch.rst", category="Fetch"),
    log:
        "logs/fetch_stats/fetch_stats.log",
    benchmark:
        "benchmarks/fetch_stats/fetch_stats.tsv"
    script:
        "../scripts/fetch_stats.py"


rule benchmark_table:
    input:
        benchmarks=lambda wc: [
            *expand("benchmarks/{rule}/{book}.tsv", rule=["fetch", "chunk", "embed", "fulltext"], book=catalog_books()),
            "benchmarks/vector_index/vector_index.tsv",
        ],
    output:
        table=report("results/stats/benchmarks.tsv", caption="../report/benchmarks.rst", category="Benchmarks"),
    log:
        "logs/benchmark_table/benchmark_table.log",
    benchmark:
        "benchmarks/benchmark_table/benchmark_table.tsv"
    script:
        "../scripts/benchmark_table.py"


rule plots:
    input:
        benchmarks="results/stats/benchmarks.tsv",
        stats=lambda wc: expand("results/stats/fetch/{book}.json", book=catalog_books()),
    output:
        throughput=report("results/plots/throughput.png", caption="../report/throughput.rst", category="Plots"),
        requests=report("results/plots/requests.png", caption="../report/requests.rst", category="Plots"),
        book_times=report("results/plots/book_times.png", caption="../report/book_times.rst", category="Plots"),
    log:
        "logs/plots/plots.log",
    benchmark:
        "benchmarks/plots/plots.tsv"
    script:
        "../scripts/plots.py"
