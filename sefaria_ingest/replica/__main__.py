"""`python -m sefaria_ingest.replica --data DIR [--host H] [--port P] [--latency-ms N] [--faults SPEC] [--max-rps N]`.

Serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .faults import FaultSpec
from .runner import run_replica


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sefaria_ingest.replica", description=__doc__)
    p.add_argument("--data", required=True, help="a Sefaria-Export tree (e.g. ../shared/sefaria-sample)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the first line)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every request, like a far server")
    p.add_argument("--preload", action="store_true", help="read every book before listening")
    p.add_argument("--faults", default="", metavar="SPEC",
                   help="inject faults, e.g. '429=0.05,5xx=0.1,timeout=0.02,reset=0.02,truncate=0.01,"
                        "error_body=0.01,content_type=0.01,seed=7,retry_after=1,slow=90'")
    p.add_argument("--fault-books", default="", metavar="TITLES", help="restrict --faults to these books: 'Ruth,Jonah'")
    p.add_argument("--fail-book", action="append", default=[], metavar="TITLE",
                   help="always answer this book's requests with 500 (repeatable)")
    p.add_argument("--max-rps", type=int, help="answer 429 (Retry-After: 1) past N requests per second, all clients")
    return p.parse_args(argv)


def fault_spec(args: argparse.Namespace) -> FaultSpec:
    extra = {"books": tuple(t.strip() for t in args.fault_books.split(",") if t.strip()),
             "fail_books": tuple(args.fail_book)}
    if args.max_rps is not None:
        extra["max_rps"] = args.max_rps
    return FaultSpec.parse(args.faults, **extra)


async def serve(args: argparse.Namespace, faults: FaultSpec | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_replica(args.data, args.host, args.port, latency_ms=args.latency_ms,
                           preload=args.preload, faults=faults) as url:
        print(f"listening on {url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        faults = fault_spec(args)
    except ValueError as exc:
        print(f"replica: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args, faults))
    except FileNotFoundError as exc:
        print(f"replica: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
