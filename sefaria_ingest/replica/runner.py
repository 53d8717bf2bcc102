"""Running the replica: inside an event loop (`run_replica`) or on a thread of its own (`ReplicaThread`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import AsyncIterator

from aiohttp import web

from .app import make_app


@contextlib.asynccontextmanager
async def run_replica(data_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0,
                      **opts) -> AsyncIterator[str]:
    """Serve the replica while the block runs; yields its base URL (port 0 picks a free port)."""
    runner = web.AppRunner(make_app(data_dir, **opts), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


class ReplicaThread:
    """The replica on a background thread with its own loop, for synchronous callers (tests, scripts).

    with ReplicaThread(sample_dir) as url: ...   # url = "http://127.0.0.1:PORT"
    """

    def __init__(self, data_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, **opts):
        self._args = (data_dir, host, port)
        self._opts = opts
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.url: str | None = None

    def start(self, timeout: float = 60.0) -> str:
        self._thread = threading.Thread(target=self._run, name="sefaria-replica", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"replica did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError("replica failed to start") from self._error
        return self.url

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a thread has nowhere else to raise
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_replica(*self._args, **self._opts) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may already have finished
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
