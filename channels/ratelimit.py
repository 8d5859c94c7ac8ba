"""Rate limits behind one small interface: in process memory, or in Redis shared by every process.

A customer's web chat session may reach any web process (several sockets, a reconnect after a
deploy), so with ``REDIS_URL`` set the token bucket lives in Redis and every process takes from the
same one; without it each process keeps its own (`MemoryLimiter`, the single-process default).

Both are token buckets: ``rate_per_minute`` tokens refilled continuously, at most ``burst`` saved.
`take` returns 0.0 when allowed, else the seconds to wait. If Redis does not answer, the message
is allowed (and logged): a limiter outage must never drop a customer's message.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from channels.webchat_session import RateLimiter

log = logging.getLogger("switchboard.ratelimit")


class Limiter(Protocol):
    async def take(self, key: str) -> float: ...

    async def aclose(self) -> None: ...


class MemoryLimiter:
    """This process's buckets (`channels.webchat_session.RateLimiter`)."""

    def __init__(self, rate_per_minute: int, *, burst: int | None = None) -> None:
        self.buckets = RateLimiter(rate_per_minute, burst=burst)

    async def take(self, key: str) -> float:
        return self.buckets.take(key)

    async def aclose(self) -> None:
        return None


# One atomic step per take: refill by the time elapsed on the Redis clock, take a token if there is
# one, keep the bucket only as long as it takes to refill (so idle sessions cost nothing).
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(b[1]) or capacity
local stamp = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RedisLimiter:
    """Buckets in Redis (``<prefix><key>`` hashes), shared by every process using the same Redis."""

    def __init__(self, url: str, rate_per_minute: int, *, burst: int | None = None,
                 prefix: str = "switchboard:rate:", timeout: float = 1.0) -> None:
        self.url = url
        self.capacity = float(burst if burst is not None else max(1, rate_per_minute))
        self.refill_per_second = max(rate_per_minute, 1) / 60.0
        self.prefix = prefix
        self.timeout = timeout
        self._client: Any = None
        self._script: Any = None

    def _ensure(self) -> Any:
        if self._script is None:  # created lazily, on the serving event loop
            from redis.asyncio import Redis  # noqa: PLC0415 optional: redis loads only when REDIS_URL is set

            self._client = Redis.from_url(self.url, socket_connect_timeout=self.timeout,
                                          socket_timeout=self.timeout)
            self._script = self._client.register_script(_TAKE)
        return self._script

    async def take(self, key: str) -> float:
        try:
            wait = await self._ensure()(keys=[self.prefix + key], args=[self.capacity, self.refill_per_second])
        except Exception as exc:  # fail open: the customer's message matters more than the limit
            log.warning("rate limit check in Redis failed, allowing: %s", type(exc).__name__)
            return 0.0
        return max(0.0, float(wait))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = self._script = None


def make_limiter(rate_per_minute: int, *, redis_url: str | None = None, burst: int | None = None,
                 prefix: str = "switchboard:rate:") -> Limiter:
    """A Redis limiter when ``redis_url`` is set, else one in this process's memory."""
    if redis_url:
        return RedisLimiter(redis_url, rate_per_minute, burst=burst, prefix=prefix)
    return MemoryLimiter(rate_per_minute, burst=burst)


__all__ = ["Limiter", "MemoryLimiter", "RedisLimiter", "make_limiter"]
