"""TokenBucket timing, measured with the real clock over short windows."""

from __future__ import annotations

import asyncio
import time

import pytest

from sefaria_ingest.ratelimit import Limiter, Penalizable, TokenBucket


async def _stamps(bucket: TokenBucket, n: int) -> list[float]:
    start = time.monotonic()
    out = []
    for _ in range(n):
        await bucket.acquire()
        out.append(time.monotonic() - start)
    return out


def test_burst_is_immediate_then_rate_applies():
    rate, burst = 20.0, 3
    stamps = asyncio.run(_stamps(TokenBucket(rate=rate, burst=burst), 13))
    assert stamps[burst - 1] < 0.08  # without the burst the third token would come at 0.1 s
    # By time t at most burst + rate * t tokens; scheduling delays only make stamps later.
    for i, t in enumerate(stamps):
        assert t >= (i + 1 - burst) / rate - 0.005
    assert stamps[-1] <= 2 * (len(stamps) - burst) / rate


def test_concurrent_acquirers_share_one_rate():
    async def main() -> float:
        bucket = TokenBucket(rate=50, burst=1)
        start = time.monotonic()
        await asyncio.gather(*(bucket.acquire() for _ in range(26)))
        return time.monotonic() - start

    elapsed = asyncio.run(main())
    assert 25 / 50 * 0.95 <= elapsed <= 1.5


@pytest.mark.parametrize("rate", [None, 0, -1])
def test_no_rate_means_unlimited(rate):
    stamps = asyncio.run(_stamps(TokenBucket(rate=rate, burst=1), 2000))
    assert stamps[-1] < 0.5


def test_penalize_pauses_and_drops_the_saved_burst():
    async def main() -> list[float]:
        bucket = TokenBucket(rate=20, burst=5)
        bucket.penalize(0.3)
        return await _stamps(bucket, 3)

    stamps = asyncio.run(main())
    assert 0.29 <= stamps[0] <= 0.6
    # after the pause the burst of 5 is not available: the next tokens come at the plain rate
    for i, t in enumerate(stamps):
        assert t >= 0.3 + i / 20 - 0.005


def test_penalize_pauses_an_unlimited_bucket():
    async def main() -> list[float]:
        bucket = TokenBucket(rate=None)
        bucket.penalize(0.2)
        return await _stamps(bucket, 2)

    stamps = asyncio.run(main())
    assert 0.19 <= stamps[0] <= 0.5
    assert stamps[1] - stamps[0] < 0.05


def test_a_shorter_penalty_does_not_shorten_a_longer_one():
    async def main() -> list[float]:
        bucket = TokenBucket(rate=None)
        bucket.penalize(0.3)
        bucket.penalize(0.05)
        return await _stamps(bucket, 1)

    assert asyncio.run(main())[0] >= 0.29


def test_bad_burst_rejected():
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0)


def test_bucket_follows_the_limiter_protocols():
    bucket = TokenBucket(rate=1)
    assert isinstance(bucket, Limiter)
    assert isinstance(bucket, Penalizable)
