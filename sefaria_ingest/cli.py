"""Command line: `python -m sefaria_ingest fetch|search|rebuild-fulltext …`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .errors import IngestError

DEFAULT_API = "https://www.sefaria.org"


def _fetch(args: argparse.Namespace) -> int:
    from .client import ClientConfig
    from .fetch import fetch_book, summary_line, write_book
    from .global_limit import make_global_limiter
    from .sources import FetchOptions

    base = args.api_url if args.source == "api" else args.export_url
    if not base:
        print(f"error: --export-url is required with --source export", file=sys.stderr)
        return 2
    config = ClientConfig(base_url=base, requests_per_second=args.rps, max_in_flight=args.max_in_flight)
    options = FetchOptions(languages=tuple(args.lang or ("he", "en")), versions=args.versions)
    shared = make_global_limiter(args.global_rps, args.global_state)
    try:
        result = asyncio.run(fetch_book(args.book, source=args.source, base_url=base, client_config=config,
                                        options=options, limiters=[shared] if shared else []))
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        write_book(result, args.out, args.stats)
    except OSError as exc:
        print(f"error: {args.book}: cannot write {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(summary_line(result.stats))
    return 0


def _fulltext_config(path: str | None) -> dict | None:
    """The `fulltext` section of the workflow config, so search asks the backend the workflow indexed into."""
    from pathlib import Path

    import yaml

    from .config import validate_config

    if not path or not Path(path).is_file():
        return None
    config = validate_config(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    fulltext = config["fulltext"]
    return None if fulltext["backend"] == "tantivy" else fulltext


def _search(args: argparse.Namespace) -> int:
    from .search import format_results, search

    try:
        results = search(args.results, args.query, k=args.k, mode=args.mode, lang=args.lang, book=args.book,
                         fulltext_config=_fulltext_config(args.configfile))
    except (IngestError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_results(results, as_json=args.json))
    return 0


def _rebuild_fulltext(args: argparse.Namespace) -> int:
    """Load every book's chunks into a fresh Elasticsearch/OpenSearch index and switch the alias at the end."""
    from pathlib import Path

    from .index.fulltext import open_backend
    from .records import Chunk, read_jsonl

    config = _fulltext_config(args.configfile)
    if config is None:
        print("error: rebuild-fulltext needs fulltext.backend elasticsearch or opensearch in the config; for tantivy "
              "delete results/index/fulltext and results/fulltext/ and rerun snakemake", file=sys.stderr)
        return 2
    files = sorted(Path(args.results, "chunks").glob("*.jsonl"))
    if not files:
        print(f"error: no chunk files under {args.results}/chunks: run the workflow first", file=sys.stderr)
        return 1

    def books():
        for path in files:
            chunks = list(read_jsonl(path, Chunk))
            if chunks:
                yield chunks[0].book, chunks, _book_vectors(config, Path(args.results), path.stem)

    backend = open_backend(config)
    try:
        total = backend.rebuild(books())
    except IngestError as exc:
        print(f"error: {exc} (the alias still points at the previous index)", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print(f"rebuilt {config['index']}: {total} documents from {len(files)} books; the alias now points at them")
    return 0


def _book_vectors(config: dict, results, slug: str) -> dict | None:
    """The book's vectors from results/vectors when the engine stores them (`vector_dims`), as the workflow sends."""
    npy, ids = results / "vectors" / f"{slug}.npy", results / "vectors" / f"{slug}.ids.json"
    if not config.get("vector_dims") or not npy.exists():
        return None
    from .embed import read_vectors_by_chunk

    return read_vectors_by_chunk(npy, ids)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sefaria_ingest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fetch", help="fetch one book into a JSONL file of segments")
    f.add_argument("--source", choices=("api", "export"), default="api")
    f.add_argument("--api-url", default=DEFAULT_API)
    f.add_argument("--export-url", help="export base URL or local directory (for --source export)")
    f.add_argument("--book", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--stats", help="also write fetch statistics (JSON) here")
    f.add_argument("--lang", action="append", choices=("he", "en"), help="languages (default: he and en)")
    f.add_argument("--versions", choices=("primary", "all"), default="primary")
    f.add_argument("--rps", type=float, default=2.0, help="requests per second for this job (default 2)")
    f.add_argument("--max-in-flight", type=int, default=4)
    f.add_argument("--global-rps", type=float,
                   help="requests per second shared by every fetch job on this machine (default: no shared limit)")
    f.add_argument("--global-state", help="state file of the shared limit (default: "
                                          ".snakemake/sefaria_ingest/global_rate.json)")
    f.set_defaults(func=_fetch)

    s = sub.add_parser("search", help="search the indexes built under results/")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--mode", choices=("bm25", "vector", "hybrid"), default="hybrid")
    s.add_argument("--lang", choices=("he", "en"))
    s.add_argument("--book")
    s.add_argument("--results", default="results")
    s.add_argument("--json", action="store_true")
    s.add_argument("--configfile", default="config/config.yaml",
                   help="workflow config whose `fulltext` backend to query (default: config/config.yaml)")
    s.set_defaults(func=_search)

    r = sub.add_parser("rebuild-fulltext", help="reload results/chunks into a fresh Elasticsearch/OpenSearch index, "
                                                "then switch the alias (searchers never see a half-built index)")
    r.add_argument("--results", default="results")
    r.add_argument("--configfile", default="config/config.yaml")
    r.set_defaults(func=_rebuild_fulltext)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
