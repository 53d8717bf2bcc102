"""Per-book fetch statistics as one TSV table for the report."""

from sefaria_ingest.report import fetch_stats_table
from sefaria_ingest.workflow import run_script


def main(smk):
    fetch_stats_table(smk.input.stats, smk.output.table)


run_script(snakemake, main)  # noqa: F821
