"""Web chat session tokens (HMAC-signed, no storage) and the per-session rate limit.

A token is ``v2.<session id>.<expires at>.<signature>``: the session id is 22 url-safe random
characters (128 bits), ``expires at`` unix seconds, and the signature is HMAC-SHA256 of
``webchat:v2:<session id>:<expires at>`` with the app's secret key, base64url without padding.
It travels in the socket's first frame (never in a URL, so no access log holds it) and is renewed
silently: the server sends a fresh one in ``ready`` and whenever half its lifetime has passed. The
session id is the customer's address on the "web" channel; whoever holds the token is that customer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

_SID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_EXP = re.compile(r"^[0-9]{1,12}$")


@dataclass(frozen=True, slots=True)
class Claims:
    sid: str
    expires_at: int  # unix seconds


class SessionSigner:
    """Issues and verifies session tokens (they expire: `ttl_seconds`; renewal issues a new one, same sid).

    Example::

        signer = SessionSigner("s3cret", ttl_seconds=86400)
        token = signer.issue()
        signer.verify(token)        # -> Claims(sid, expires_at), or None if forged/malformed/expired
    """

    def __init__(self, secret_key: str, *, ttl_seconds: int = 86_400) -> None:
        if not secret_key:
            raise ValueError("a web chat secret key is required")
        if ttl_seconds <= 0:
            raise ValueError("the session lifetime must be positive")
        self._key = secret_key.encode("utf-8")
        self.ttl_seconds = ttl_seconds

    def _sign(self, sid: str, expires_at: int) -> str:
        mac = hmac.new(self._key, f"webchat:v2:{sid}:{expires_at}".encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def issue(self, sid: str | None = None, *, now: float | None = None) -> str:
        """A new token: for a new session, or (renewal) for `sid` with a fresh expiry."""
        sid = sid or secrets.token_urlsafe(16)
        expires_at = int(time.time() if now is None else now) + self.ttl_seconds
        return f"v2.{sid}.{expires_at}.{self._sign(sid, expires_at)}"

    def verify(self, token: object, *, now: float | None = None) -> Claims | None:
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "v2" or not _SID.match(parts[1]) or not _EXP.match(parts[2]):
            return None  # v1 tokens (no expiry, and once written to access logs) are no longer accepted
        expires_at = int(parts[2])
        if not hmac.compare_digest(self._sign(parts[1], expires_at), parts[3]):
            return None
        if expires_at <= (time.time() if now is None else now):
            return None
        return Claims(parts[1], expires_at)

    def needs_renewal(self, claims: Claims, *, now: float | None = None) -> bool:
        """True once less than half the lifetime is left."""
        left = claims.expires_at - (time.time() if now is None else now)
        return left < self.ttl_seconds / 2


class RateLimiter:
    """A token bucket per key (session id): `rate_per_minute` tokens, refilled continuously.

    Bounded: the least recently used buckets are forgotten beyond `max_keys` (a forgotten bucket
    starts full again, which only ever errs on the customer's side).
    """

    def __init__(self, rate_per_minute: int, *, burst: int | None = None, max_keys: int = 100_000) -> None:
        self.capacity = float(burst if burst is not None else max(1, rate_per_minute))
        self.refill_per_second = max(rate_per_minute, 1) / 60.0
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, *, now: float | None = None) -> float:
        """Take one token. Returns 0.0 when allowed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        tokens, stamp = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.refill_per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.refill_per_second
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait
