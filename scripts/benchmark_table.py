"""Every rule's benchmark file aggregated into one TSV table for the report."""

from sefaria_ingest.report import benchmark_table
from sefaria_ingest.workflow import run_script


def main(smk):
    benchmark_table(smk.input.benchmarks, smk.output.table)


run_script(snakemake, main)  # noqa: F821
