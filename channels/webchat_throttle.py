"""How many web chat sessions one client address may start: a per-minute budget.

`LocalThrottle` counts in this process (a token bucket); `RedisThrottle` counts in Redis, shared by every
web process (a fixed one-minute window: ``INCR`` + ``EXPIRE``). Redis being down never blocks customers:
the process falls back to its local count and logs it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from channels.webchat_session import RateLimiter

log = logging.getLogger("switchboard.webchat")
REDIS_TIMEOUT = 0.5


class Throttle(Protocol):
    async def take(self, key: str) -> float:
        """0.0 when allowed, else seconds to wait."""
        ...

    async def aclose(self) -> None: ...


class LocalThrottle:
    def __init__(self, per_minute: int) -> None:
        self._limiter = RateLimiter(per_minute)

    async def take(self, key: str) -> float:
        return self._limiter.take(key)

    async def aclose(self) -> None:
        return None


class RedisThrottle:
    def __init__(self, url: str, per_minute: int, *, prefix: str = "switchboard:mint:") -> None:
        self.url = url
        self.per_minute = max(1, per_minute)
        self.prefix = prefix
        self._redis: Any = None
        self._local = LocalThrottle(per_minute)

    def _client(self) -> Any:
        if self._redis is None:
            from redis.asyncio import Redis  # noqa: PLC0415 optional: redis loads only when REDIS_URL is set

            self._redis = Redis.from_url(self.url, socket_timeout=REDIS_TIMEOUT,
                                         socket_connect_timeout=REDIS_TIMEOUT)
        return self._redis

    async def take(self, key: str) -> float:
        window = int(time.time() // 60)
        name = f"{self.prefix}{window}:{key}"
        try:
            pipe = self._client().pipeline()
            pipe.incr(name)
            pipe.expire(name, 120)
            count, _ = await pipe.execute()
        except Exception:
            log.warning("session throttle: Redis unavailable, counting in this process", exc_info=True)
            return await self._local.take(key)
        if int(count) <= self.per_minute:
            return 0.0
        return max(0.1, (window + 1) * 60 - time.time())

    async def aclose(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()
