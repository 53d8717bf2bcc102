"""The machine-wide GCRA limiter: shared schedule, penalties and recovery, bad state files, cost, and the proof
that 10 fetch processes together stay under the global rate as the replica counts it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sefaria_ingest.client import ClientConfig
from sefaria_ingest.errors import FetchFailed
from sefaria_ingest.fetch import fetch_book
from sefaria_ingest.global_limit import GlobalRateLimiter, make_global_limiter
from sefaria_ingest.ratelimit import Limiter, Penalizable
from sefaria_ingest.replica import ReplicaThread
from sefaria_ingest.replica.faults import FaultSpec
from sefaria_ingest.retry import RetryPolicy
from sefaria_ingest.sources import FetchOptions

REPO = Path(__file__).resolve().parents[1]


async def _stamps(limiters: list[GlobalRateLimiter], n: int) -> list[float]:
    """Acquire n times, round-robin over `limiters` (separate instances stand for separate jobs)."""
    start = time.monotonic()
    out = []
    for i in range(n):
        await limiters[i % len(limiters)].acquire()
        out.append(time.monotonic() - start)
    return out


def test_is_a_penalizable_limiter(tmp_path):
    limiter = GlobalRateLimiter(tmp_path / "deep" / "er" / "state.json", rate=5)
    assert isinstance(limiter, Limiter) and isinstance(limiter, Penalizable)
    assert (tmp_path / "deep" / "er" / "state.json").is_file()


def test_instances_on_one_file_share_one_schedule(tmp_path):
    rate, n = 40.0, 21
    jobs = [GlobalRateLimiter(tmp_path / "s.json", rate) for _ in range(3)]
    stamps = asyncio.run(_stamps(jobs, n))
    for i, t in enumerate(stamps):
        assert t >= i / rate - 0.005  # one schedule: three jobs get 40/s together, not 120/s
    assert stamps[-1] <= 2 * (n - 1) / rate


def test_separate_files_are_separate_budgets(tmp_path):
    rate, n = 40.0, 21
    a, b = GlobalRateLimiter(tmp_path / "a.json", rate), GlobalRateLimiter(tmp_path / "b.json", rate)

    async def main() -> float:
        start = time.monotonic()
        await asyncio.gather(_stamps([a], n), _stamps([b], n))
        return time.monotonic() - start

    assert asyncio.run(main()) < 1.5 * (n - 1) / rate  # in parallel, not one after the other


def test_burst_then_rate(tmp_path):
    rate, burst = 20.0, 4
    stamps = asyncio.run(_stamps([GlobalRateLimiter(tmp_path / "s.json", rate, burst)], 10))
    assert stamps[burst - 1] < 0.05
    for i, t in enumerate(stamps):
        assert t >= (i + 1 - burst) / rate - 0.005


def test_penalty_pauses_every_job_and_halves_the_rate_once_per_pause(tmp_path):
    rate = 40.0
    struggling = GlobalRateLimiter(tmp_path / "s.json", rate)
    other = GlobalRateLimiter(tmp_path / "s.json", rate)
    struggling.penalize(0.3)
    assert other.effective_rate() == pytest.approx(rate / 2)
    struggling.penalize(0.3)  # answers to requests already in flight: an echo of the same overload
    assert other.effective_rate() == pytest.approx(rate / 2)
    stamps = asyncio.run(_stamps([other], 4))
    assert 0.29 <= stamps[0] <= 0.5
    for i, t in enumerate(stamps):  # no saved-up burst after the pause, and at the halved rate
        assert t >= stamps[0] + i / (rate / 2) * 0.8


def test_repeated_penalties_floor_at_an_eighth_and_recover(tmp_path):
    rate = 16.0
    limiter = GlobalRateLimiter(tmp_path / "s.json", rate)
    for _ in range(6):
        limiter.penalize(0.0)  # each after the previous pause ended: a new overload each time
    assert limiter.effective_rate() == pytest.approx(rate / 8, rel=0.05)
    time.sleep(0.6)
    recovered = limiter.effective_rate()
    assert rate / 8 * 1.25 ** 0.5 <= recovered <= rate / 8 * 1.25 ** 1.0
    limiter.penalize(0.0)
    assert limiter.effective_rate() == pytest.approx(max(recovered / 2, rate / 8), rel=0.05)


def test_sleeping_waiter_is_pushed_behind_a_later_penalty(tmp_path):
    rate = 2.0  # slots 0.5 s apart
    waiter, struggling = GlobalRateLimiter(tmp_path / "s.json", rate), GlobalRateLimiter(tmp_path / "s.json", rate)

    async def main() -> float:
        await waiter.acquire()  # slot now; the next one is reserved for +0.5 s
        start = time.monotonic()
        task = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0.1)
        struggling.penalize(0.8)  # until +0.9 s: the reserved slot falls inside the pause
        await task
        return time.monotonic() - start

    assert asyncio.run(main()) >= 0.85


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"tat": "x"}', b"\xff\xfe" * 200,
                                     b'{"boot": "%s", "tat": 1e300, "not_before": 0, "factor": 1}'])
def test_corrupt_state_is_reset_with_a_warning(tmp_path, caplog, content):
    path = tmp_path / "s.json"
    limiter = GlobalRateLimiter(path, rate=100)
    boot = json.loads(path.read_bytes())["boot"]
    path.write_bytes(content.replace(b"%s", boot.encode()))
    with caplog.at_level(logging.WARNING, logger="sefaria_ingest.global_limit"):
        started = time.monotonic()
        asyncio.run(limiter.acquire())
    assert time.monotonic() - started < 0.1
    assert "starting afresh" in caplog.text
    state = json.loads(path.read_bytes())
    assert state["boot"] == boot and state["tat"] > 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sefaria_ingest.global_limit"):
        asyncio.run(limiter.acquire())
    assert caplog.text == ""  # reset once, then read normally


def test_state_from_an_earlier_boot_is_reset_quietly(tmp_path, caplog):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"boot": "another-boot", "tat": 1e9, "not_before": 1e9, "factor": 0.125}))
    limiter = GlobalRateLimiter(path, rate=100)
    with caplog.at_level(logging.WARNING, logger="sefaria_ingest.global_limit"):
        started = time.monotonic()
        asyncio.run(limiter.acquire())
    assert time.monotonic() - started < 0.1 and caplog.text == ""
    assert limiter.effective_rate() == pytest.approx(100)


def test_state_file_removed_under_a_job_is_recreated(tmp_path):
    path = tmp_path / "s.json"
    limiter = GlobalRateLimiter(path, rate=1000)
    path.unlink()
    asyncio.run(limiter.acquire())
    assert path.is_file()


def test_acquire_costs_tens_of_microseconds(tmp_path):
    limiter = GlobalRateLimiter(tmp_path / "s.json", rate=1e9)

    async def main(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await limiter.acquire()
        return (time.perf_counter() - start) / n

    per_acquire = asyncio.run(main(5000))
    assert per_acquire < 200e-6, f"{per_acquire * 1e6:.0f} µs per acquire"


def test_make_global_limiter(tmp_path):
    assert make_global_limiter(None, tmp_path / "s.json") is None
    assert make_global_limiter(0, tmp_path / "s.json") is None
    limiter = make_global_limiter(3.5, tmp_path / "s.json")
    assert isinstance(limiter, GlobalRateLimiter) and limiter.rate == 3.5
    with pytest.raises(ValueError):
        GlobalRateLimiter(tmp_path / "s.json", rate=float("inf"))
    with pytest.raises(ValueError):
        GlobalRateLimiter(tmp_path / "s.json", rate=1, burst=0)


def test_a_job_answered_429_slows_the_other_jobs(sample_dir, tmp_path):
    """Through the real client: 429 + Retry-After on one book pauses a concurrent job on another book."""
    fast = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.05)
    options = FetchOptions()

    async def job(url: str, book: str, delay: float, state: Path) -> float:
        await asyncio.sleep(delay)
        config = ClientConfig(base_url=url, requests_per_second=None, retry=fast)
        started = time.monotonic()
        await fetch_book(book, source="api", base_url=url, client_config=config, options=options,
                         limiters=[GlobalRateLimiter(state, rate=50)])
        return time.monotonic() - started

    async def both(url: str, state: Path) -> list[BaseException | float]:
        return await asyncio.gather(job(url, "Ruth", 0.0, state), job(url, "Jonah", 0.2, state),
                                    return_exceptions=True)

    spec = FaultSpec(rate_429=1.0, books=("Ruth",), retry_after=1)
    with ReplicaThread(sample_dir, faults=spec) as url:
        alone = asyncio.run(job(url, "Jonah", 0.0, tmp_path / "alone.json"))
        struggling, other = asyncio.run(both(url, tmp_path / "shared.json"))
    assert isinstance(struggling, FetchFailed) and "429" in str(struggling)
    assert alone < 0.5
    assert other >= 0.7  # waited out the pause Ruth's 429 asked for (1 s from t=0, Jonah started at 0.2)


# ---- the proof, seen from the server: 10 fetch processes against one replica ----

BOOKS = ["Tanya", "Ruth", "Jonah", "Hallel", "Iggeret HaRamban"] * 2


def _run_jobs(url: str, out: Path, rate: float, global_state: Path | None) -> dict:
    procs = []
    for i, book in enumerate(BOOKS):
        cmd = [sys.executable, "-m", "sefaria_ingest", "fetch", "--source", "api", "--api-url", url,
               "--book", book, "--out", str(out / f"{i}.jsonl"), "--rps", str(rate)]
        if global_state is not None:
            cmd += ["--global-rps", str(rate), "--global-state", str(global_state)]
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        output = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, output
    with urllib.request.urlopen(url + "/_replica/stats", timeout=10) as resp:
        return json.load(resp)


def _reset(url: str) -> None:
    req = urllib.request.Request(url + "/_replica/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=10).close()


def test_ten_processes_stay_under_the_global_rate(sample_dir, tmp_path):
    rate = 6.0  # also each job's own limit: the old design let 10 jobs send 10x this
    (tmp_path / "free").mkdir()
    (tmp_path / "shared").mkdir()
    with ReplicaThread(sample_dir, preload=True) as url:
        free = _run_jobs(url, tmp_path / "free", rate, None)
        _reset(url)
        shared = _run_jobs(url, tmp_path / "shared", rate, tmp_path / "global_rate.json")
    assert free["requests_total"] == shared["requests_total"] >= 30
    assert free["peak_requests_per_second"] > rate + 1  # without the shared budget the jobs add up
    assert shared["peak_requests_per_second"] <= rate + 1
    for i in range(len(BOOKS)):
        assert (tmp_path / "shared" / f"{i}.jsonl").read_bytes() == (tmp_path / "free" / f"{i}.jsonl").read_bytes()
