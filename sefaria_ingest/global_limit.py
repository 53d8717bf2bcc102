"""A request budget shared by every fetch job on the machine: GCRA state in a small file under fcntl locks.

Per-job token buckets let N parallel jobs send N times the limit; this limiter is one schedule for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson

log = logging.getLogger(__name__)

DEFAULT_STATE_PATH = Path(".snakemake") / "sefaria_ingest" / "global_rate.json"
# The state is rewritten in place, padded to a fixed size: a shorter record never leaves stale bytes behind.
_RECORD_SIZE = 256
_SLOWDOWN = 0.5
_RECOVERY_PER_SECOND = 1.25
_FLOOR = 1.0 / 8.0
_MAX_PENALTY = 600.0
# Legitimate schedules reach at most minutes ahead; an hour ahead means a corrupt or foreign file.
_MAX_AHEAD = 3600.0


def _boot_id() -> str:
    """Identifies this boot: monotonic times in a file written before a reboot mean nothing after it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


_BOOT = _boot_id()


@dataclass(slots=True)
class _State:
    """GCRA theoretical arrival time, the shared "send nothing before" time, and the rate factor at that time."""

    tat: float = 0.0
    not_before: float = 0.0
    factor: float = 1.0

    def factor_at(self, now: float) -> float:
        """The slowdown recovers by x1.25 per second after the last pause ended, up to the full rate."""
        quiet = max(now - self.not_before, 0.0)
        return min(1.0, self.factor * _RECOVERY_PER_SECOND ** min(quiet, 60.0))

    def encode(self) -> bytes:
        data = orjson.dumps({"boot": _BOOT, "tat": self.tat, "not_before": self.not_before,
                             "factor": self.factor})
        return data.ljust(_RECORD_SIZE)


class _Unusable(Exception):
    """The state file cannot be used; `warn` is False for the expected case of a file from an earlier boot."""

    def __init__(self, warn: bool):
        super().__init__()
        self.warn = warn


def _decode(raw: bytes, now: float) -> _State:
    """The stored state; raises _Unusable when it is unreadable, from another boot, or implausible."""
    try:
        doc = orjson.loads(raw)
        state = _State(float(doc["tat"]), float(doc["not_before"]), float(doc["factor"]))
        boot = doc["boot"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise _Unusable(warn=True) from None
    if boot != _BOOT:
        raise _Unusable(warn=False)
    if not all(math.isfinite(v) for v in (state.tat, state.not_before, state.factor)):
        raise _Unusable(warn=True)
    if not _FLOOR <= state.factor <= 1.0 or max(state.tat, state.not_before) > now + _MAX_AHEAD:
        raise _Unusable(warn=True)
    return state


class GlobalRateLimiter:
    """At most `rate` requests per second (and `burst` back to back) across every process sharing `path`.

    Policy, shared through the file by all jobs:
    - GCRA: each acquire reserves the next slot under an exclusive fcntl lock, then sleeps (outside the lock)
      until it. The clock is CLOCK_MONOTONIC, which is machine-wide; the file records the boot it belongs to.
    - penalize(seconds) (a 429/503 with Retry-After): nobody sends before now+seconds, and the rate is halved
      (down to 1/8 of `rate`). Penalties arriving while a pause is still running are echoes of the same
      overload (answers to requests already in flight) and only extend the pause; they do not halve again.
    - Recovery: after the pause ends the rate grows x1.25 per second without a new penalty, back to `rate`
      (about 3 s from 1/2, 9 s from 1/8). After a pause traffic resumes at the slowed rate, never in a burst.
    - A state file that cannot be parsed or holds implausible values is reset with a warning; one written
      before a reboot is reset silently. Lock waits block the event loop, but only for a read and a write.
    """

    def __init__(self, path: str | os.PathLike, rate: float, burst: int = 1):
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"global rate must be a positive number of requests per second, got {rate}")
        if burst < 1:
            raise ValueError(f"global burst must be >= 1, got {burst}")
        self.path = Path(path)
        self.rate = float(rate)
        self.burst = burst
        _create_if_absent(self.path)

    async def acquire(self) -> None:
        """Wait for this process's next slot in the machine-wide schedule."""
        while True:
            slot = self._reserve()
            delay = slot - time.monotonic()
            if delay <= 0:
                return
            await asyncio.sleep(delay)
            if not self._pushed_back(slot):
                return
            # A penalty arrived while we slept and covers our slot: take a new one after the pause.

    def penalize(self, seconds: float) -> None:
        """The server asked for a pause: push everyone's next slot past it and slow the shared rate down."""
        seconds = min(max(float(seconds), 0.0), _MAX_PENALTY)
        with self._locked() as state:
            now = time.monotonic()
            if now >= state.not_before:
                state.factor = max(_FLOOR, state.factor_at(now) * _SLOWDOWN)
            state.not_before = max(state.not_before, now + seconds)
            # One slot at the end of the pause, then the slowed rate: no saved-up burst.
            tolerance = (self.burst - 1) / (self.rate * state.factor)
            state.tat = max(state.tat, state.not_before + tolerance)

    def effective_rate(self) -> float:
        """The shared rate right now, after any slowdown (for logs and tests)."""
        with self._locked(write=False) as state:
            return self.rate * state.factor_at(time.monotonic())

    def _reserve(self) -> float:
        with self._locked() as state:
            now = time.monotonic()
            interval = 1.0 / (self.rate * state.factor_at(max(now, state.not_before)))
            slot = max(now, state.tat - (self.burst - 1) * interval, state.not_before)
            state.tat = max(state.tat, slot) + interval
            return slot

    def _pushed_back(self, slot: float) -> bool:
        with self._locked(write=False) as state:
            return slot < state.not_before

    @contextlib.contextmanager
    def _locked(self, *, write: bool = True) -> Iterator[_State]:
        """The state under an exclusive flock; written back in place when the block ends, if `write`."""
        fd = _open_state(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            reset = False
            try:
                state = _decode(os.pread(fd, _RECORD_SIZE * 2, 0), time.monotonic())
            except _Unusable as exc:
                if exc.warn:
                    log.warning("global rate state %s is unreadable or implausible; starting afresh", self.path)
                state, write, reset = _State(), True, True
            yield state
            if write:
                os.pwrite(fd, state.encode(), 0)
                if reset:  # a longer foreign file must not leave bytes after our record
                    os.ftruncate(fd, _RECORD_SIZE)
        finally:
            os.close(fd)  # closing our only descriptor of the file releases the flock


def _open_state(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR)
    except FileNotFoundError:  # removed under us (e.g. .snakemake cleaned): recreate, as at start
        _create_if_absent(path)
        return os.open(path, os.O_RDWR)


def _create_if_absent(path: Path) -> None:
    """Write a fresh state beside `path` and hard-link it into place: never replaces a file another job uses."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.write(fd, _State().encode())
        os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def make_global_limiter(rate: float | None, path: str | os.PathLike | None = None,
                        burst: int = 1) -> GlobalRateLimiter | None:
    """The machine-wide limiter for `fetch.global_requests_per_second`; None when the rate is unset or <= 0."""
    if rate is None or rate <= 0:
        return None
    return GlobalRateLimiter(DEFAULT_STATE_PATH if path is None else path, rate, burst)
