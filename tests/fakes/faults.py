"""Fault mode for the fake platforms: a loopback TCP proxy that makes a share of calls misbehave.

    faults = Faults(rate=0.2, seed=7)
    proxy = FaultProxy(backend_port, faults, label="twilio")
    await proxy.start()               # the SDK's base URL points at proxy.url instead of the fake

For each request the proxy draws a fault with probability `rate`:

- ``reset``: the connection is reset (RST) before the request reaches the fake: the platform
  never saw it, the client gets a connection error;
- ``5xx``, ``429``, ``slow``, ``timeout``: the request is forwarded with an ``X-Fault`` header and
  the fake answers accordingly (tests/fakes/twilio.py, tests/fakes/slack.py: a 503; a 429 with
  Retry-After; a late but normal answer; an answer later than the client's timeout).

Counts per label and kind are in `Faults.counts`. Only ``Content-Length`` bodies are handled (what
aiohttp sends for the SDKs' form and JSON posts); each request goes to the fake on its own
connection (``Connection: close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("reset", "5xx", "429", "slow", "timeout")


@dataclass
class Faults:
    rate: float = 0.2
    seed: int | None = None
    weights: dict[str, float] = field(default_factory=lambda: {k: 1.0 for k in KINDS})
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self, label: str) -> str | None:
        """None (no fault) or one of KINDS; counted."""
        self.calls[label] += 1
        if self._rng.random() >= self.rate:
            return None
        kinds = list(self.weights)
        kind = self._rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
        self.counts[(label, kind)] += 1
        return kind

    def total(self, label: str | None = None) -> int:
        return sum(n for (lab, _), n in self.counts.items() if label is None or lab == label)


class FaultProxy:
    """Forwards HTTP/1.1 requests from 127.0.0.1:<port> to a fake on 127.0.0.1:<backend_port>."""

    def __init__(self, backend_port: int, faults: Faults, *, label: str, max_body: int = 4 * 2**20) -> None:
        self.backend_port = backend_port
        self.faults = faults
        self.label = label
        self.max_body = max_body
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                kept = [lines[0]]
                for line in lines[1:]:
                    if not line:
                        continue
                    name = line.split(":", 1)[0].strip().lower()
                    if name == "content-length":
                        length = int(line.split(":", 1)[1])
                    if name in ("connection", "keep-alive", "x-fault"):
                        continue
                    kept.append(line)
                if length > self.max_body:
                    return
                body = await reader.readexactly(length) if length else b""
                kind = self.faults.pick(self.label)
                if kind == "reset":
                    _reset(writer)
                    return
                kept.append("Connection: close")
                if kind is not None:
                    kept.append(f"X-Fault: {kind}")
                response = await self._forward(("\r\n".join(kept) + "\r\n\r\n").encode("latin-1") + body)
                writer.write(response)
                await writer.drain()
                if b"connection: close" in response.split(b"\r\n\r\n", 1)[0].lower():
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            return
        finally:
            self._conns.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(self, request: bytes) -> bytes:
        br, bw = await asyncio.open_connection("127.0.0.1", self.backend_port)
        try:
            bw.write(request)
            await bw.drain()
            return await br.read(-1)  # the fake closes after its answer (Connection: close)
        finally:
            bw.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


__all__ = ["Faults", "FaultProxy", "KINDS"]
