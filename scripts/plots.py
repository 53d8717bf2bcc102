"""The report's figures from the benchmark table and the per-book fetch statistics."""

from sefaria_ingest.plots import book_times_plot, requests_plot, throughput_plot
from sefaria_ingest.workflow import log, run_script


def main(smk):
    fetch = smk.config["fetch"]
    rates = throughput_plot(smk.input.benchmarks, smk.input.stats, smk.output.throughput)
    requests_plot(smk.input.stats, smk.output.requests, fetch["requests_per_second"],
                  fetch.get("global_requests_per_second"))
    book_times_plot(smk.input.benchmarks, smk.output.book_times)
    log.info("throughput (segments/s of job time): %s", {k: round(v, 1) for k, v in rates.items()})


run_script(snakemake, main)  # noqa: F821
