"""Rate limits: one bucket per session whichever process takes from it (Redis), or per process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

from channels.ratelimit import MemoryLimiter, RedisLimiter, make_limiter
from tests.fixtures.redis import redis_server_url  # noqa: F401  (the fixture)


async def test_memory_limiter_allows_the_burst_then_asks_to_wait() -> None:
    limiter = MemoryLimiter(6)
    waits = [await limiter.take("s1") for _ in range(7)]
    assert waits[:6] == [0.0] * 6
    assert 9.0 < waits[6] <= 10.0  # 6 per minute: one token every 10 s
    assert await limiter.take("s2") == 0.0  # buckets are per key


async def test_redis_limiter_is_shared_by_two_processes(redis_server_url: str) -> None:  # noqa: F811
    key = uuid.uuid4().hex
    a, b = RedisLimiter(redis_server_url, 10), RedisLimiter(redis_server_url, 10)
    # 5 from this process, 5 from another OS process, on the same session: the bucket is then empty here
    taken = [await a.take(key) for _ in range(5)]
    code = ("import asyncio; from channels.ratelimit import RedisLimiter\n"
            f"l = RedisLimiter({redis_server_url!r}, 10)\n"
            f"async def main():\n    print([await l.take({key!r}) for _ in range(5)]); await l.aclose()\n"
            "asyncio.run(main())")
    other = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True,
                                    timeout=60, check=True)
    assert taken == [0.0] * 5 and other.stdout.strip() == str([0.0] * 5)
    wait = await b.take(key)
    assert 5.0 < wait <= 6.0  # 10 per minute: the next token in 6 s
    assert await a.take(uuid.uuid4().hex) == 0.0
    await a.aclose()
    await b.aclose()


async def test_concurrent_takes_in_redis_never_exceed_the_bucket(redis_server_url: str) -> None:  # noqa: F811
    key = uuid.uuid4().hex
    limiters = [RedisLimiter(redis_server_url, 20) for _ in range(4)]
    waits = await asyncio.gather(*(limiters[i % 4].take(key) for i in range(60)))
    assert sum(1 for w in waits if w == 0.0) == 20
    for limiter in limiters:
        await limiter.aclose()


async def test_redis_down_allows_rather_than_dropping_a_message() -> None:
    limiter = make_limiter(1, redis_url="redis://127.0.0.1:1/0")
    assert isinstance(limiter, RedisLimiter)
    assert [await limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    await limiter.aclose()
