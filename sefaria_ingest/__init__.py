"""sefaria-ingest: pull the Sefaria library, chunk it with exact refs, embed and index it."""

__version__ = "0.1.0"
