"""Web chat session tokens (HMAC-signed, no storage) and the per-session rate limit.

A token is ``v1.<session id>.<signature>``: the session id is 22 url-safe random characters
(128 bits) and the signature is HMAC-SHA256 of ``webchat:v1:<session id>`` with the app's
secret key, base64url without padding. The session id is the customer's address on the
"web" channel; whoever holds the token is that customer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict

_SID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class SessionSigner:
    """Issues and verifies session tokens.

    Example::

        signer = SessionSigner("s3cret")
        token = signer.issue()
        signer.verify(token)        # -> the session id, or None if forged/malformed
    """

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a web chat secret key is required")
        self._key = secret_key.encode("utf-8")

    def _sign(self, sid: str) -> str:
        mac = hmac.new(self._key, b"webchat:v1:" + sid.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def issue(self) -> str:
        sid = secrets.token_urlsafe(16)
        return f"v1.{sid}.{self._sign(sid)}"

    def verify(self, token: str | None) -> str | None:
        if not token or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "v1" or not _SID.match(parts[1]):
            return None
        if not hmac.compare_digest(self._sign(parts[1]), parts[2]):
            return None
        return parts[1]


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
