# sefaria-ingest: Sefaria library -> segments -> chunks -> embeddings -> vector + full-text indexes.
# Table of contents only; the rules live in rules/<stage>.smk, shared Python in rules/common.smk.

configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/catalog.smk"
include: "rules/fetch.smk"
include: "rules/chunk.smk"
include: "rules/embed.smk"
include: "rules/index.smk"
include: "rules/report.smk"


rule all:
    input:
        all_outputs,
    default_target: True


onsuccess:
    report_failures(success=True)


onerror:
    report_failures(success=False)
