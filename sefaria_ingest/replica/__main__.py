"""`python -m sefaria_ingest.replica --data DIR [--host H] [--port P] [--latency-ms N]`: serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .runner import run_replica


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sefaria_ingest.replica", description=__doc__)
    p.add_argument("--data", required=True, help="a Sefaria-Export tree (e.g. ../shared/sefaria-sample)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the first line)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every request, like a far server")
    p.add_argument("--preload", action="store_true", help="read every book before listening")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_replica(args.data, args.host, args.port, latency_ms=args.latency_ms,
                           preload=args.preload) as url:
        print(f"listening on {url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except FileNotFoundError as exc:
        print(f"replica: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
