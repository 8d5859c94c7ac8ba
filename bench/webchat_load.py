"""Web chat under load: many concurrent sockets against 2 web processes, each asking questions.

    .venv/bin/python bench/webchat_load.py --sockets 1000 [--no-write]

Starts PostgreSQL, Redis and the Procfile's `web` process twice (bench/soak_stack.py; no worker
processes: each web process delivers with its own worker, replies cross processes through Redis;
the fake platforms do not fail here). First a baseline: 20 questions one at a time, each on a fresh session.
Then opens `--sockets` sockets, each its own session (at most 50 opening at once), spread over both
processes, and reads the web processes' RSS before and after (memory per open socket). Then every
socket asks one question, all at once: the round trip is message sent -> first reply
frame (bot answer, clarifying question or handoff notice). Beside it, the bare embedding time of
the same questions in this process. Errors: sockets that failed to open, error frames, questions
without a reply in `--timeout` s. Prints a table and updates "## Web chat under load" in
bench/RESULTS.md. Loopback only; bounded by --sockets (max 2000) and --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.soak_check import pct  # noqa: E402
from bench.soak_stack import Stack  # noqa: E402
from bench.webchat_roundtrip import load_questions, time_encode, update_results  # noqa: E402
from tests.fakes.faults import Faults  # noqa: E402

SECTION = "## Web chat under load"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Sock:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.error_frames: list[str] = []

    async def open(self, client: httpx.AsyncClient, limit: float) -> None:
        token = (await client.post(self.url + "/api/web/session")).raise_for_status().json()["token"]
        self.ws = await websockets.connect(self.url.replace("http://", "ws://") + "/ws/chat", open_timeout=limit,
                                           max_size=2**20, ping_interval=None)
        await self.ws.send(json.dumps({"type": "auth", "token": token}))
        while json.loads(await asyncio.wait_for(self.ws.recv(), limit))["type"] != "ready":
            pass

    async def ask(self, text: str, limit: float) -> float:
        """Send, and (as the widget does) resend with the same client_id after an error frame."""
        start = time.perf_counter()
        frame_out = json.dumps({"type": "message", "client_id": uuid.uuid4().hex, "text": text})
        await self.ws.send(frame_out)
        deadline = time.monotonic() + limit
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.monotonic())))
            if frame["type"] == "message" and frame["author_kind"] != "customer":
                return time.perf_counter() - start
            if frame["type"] == "error":
                self.error_frames.append(str(frame.get("code")))
                if frame.get("code") not in ("server_error", "rate_limited"):
                    raise RuntimeError(f"error frame: {frame.get('code')}")
                await asyncio.sleep(1.0)
                await self.ws.send(frame_out)


async def run(sockets: int, questions: list[str], limit: float, log: Any) -> dict[str, Any]:
    stack = Stack(faults=Faults(rate=0.0), web=2, workers=0, keep_folder=bool(os.environ.get("SOAK_KEEP")),
                  extra_env={"WEB_RATE_PER_MINUTE": "100000", "LOG_LEVEL": "WARNING"})
    out: dict[str, Any] = {"sockets": sockets}
    try:
        await stack.start(log)
        urls = stack.web_urls()
        pids = [p.popen.pid for p in stack.procs if p.popen is not None]
        async with httpx.AsyncClient(timeout=limit, limits=httpx.Limits(max_connections=200)) as client:
            out["baseline"] = []
            for i, q in enumerate(questions[:21]):  # a fresh session each: a handed-off one gets no bot answers
                base = Sock(urls[i % len(urls)])
                await base.open(client, limit)
                seconds = await base.ask(q, limit)
                if i:  # the first is a warm-up
                    out["baseline"].append(seconds)
                await base.ws.close()
            await asyncio.sleep(1)
            rss_before = sum(rss_kib(p) for p in pids)
            socks = [Sock(urls[i % len(urls)]) for i in range(sockets)]
            sem = asyncio.Semaphore(50)
            open_errors: list[str] = []

            async def open_one(s: Sock) -> None:
                async with sem:
                    try:
                        await s.open(client, limit)
                    except Exception as exc:  # counted
                        s.ws = None
                        open_errors.append(f"{type(exc).__name__}: {exc}")

            t = time.perf_counter()
            await asyncio.gather(*(open_one(s) for s in socks))
            out["open_seconds"] = time.perf_counter() - t
            live = [s for s in socks if s.ws is not None]
            await asyncio.sleep(2)
            rss_after = sum(rss_kib(p) for p in pids)
            out.update(open_errors=open_errors, open=len(live), rss_before_kib=rss_before, rss_after_kib=rss_after,
                       kib_per_socket=(rss_after - rss_before) / max(1, len(live)))
            log(f"{len(live)} sockets open in {out['open_seconds']:.1f} s; RSS {rss_before} -> {rss_after} KiB")
            latencies: list[float] = []
            errors: list[str] = []

            async def asker(i: int, s: Sock) -> None:
                try:
                    latencies.append(await s.ask(questions[i % len(questions)], limit))
                except Exception as exc:  # counted
                    errors.append(f"{type(exc).__name__}: {exc}")

            t = time.perf_counter()
            await asyncio.gather(*(asker(i, s) for i, s in enumerate(live)))
            out["ask_seconds"] = time.perf_counter() - t
            out["rss_end_kib"] = sum(rss_kib(p) for p in pids)
            metrics = (await client.get(urls[0] + "/metrics")).text  # every process (multiprocess mode)
            out["kb_search"] = _mean(metrics, "switchboard_kb_search_seconds")
            out["delivery"] = _mean(metrics, "switchboard_delivery_latency_seconds", 'channel="web"')
            out.update(latencies=latencies, errors=errors,
                       error_frames=sum(len(s.error_frames) for s in live))
            for s in live:
                try:
                    await asyncio.wait_for(s.ws.close(), 2)
                except Exception:  # a socket the server already dropped
                    continue
        from bench.soak_stack import error_lines

        out["log_errors"] = error_lines(stack.logs())
        return out
    finally:
        await stack.stop()
        if stack.keep_folder:
            log(f"kept {stack.folder}")


def _mean(text: str, name: str, label: str = "") -> tuple[float, int]:
    """(mean seconds, count) of a Prometheus histogram summed over its series (optionally one label)."""
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(name + "_sum") and label in line:
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_count") and label in line:
            count += float(line.rsplit(" ", 1)[1])
    return (total / count if count else 0.0), int(count)


def table(r: dict[str, Any], emb: list[float], how: str) -> str:
    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 1000:.0f}"

    lat, base = r["latencies"], r["baseline"]
    rows = [
        "| measure | n | p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---|---|---|",
        f"| round trip, one socket at a time (baseline) | {len(base)} | {ms(pct(base, 50))} | {ms(pct(base, 99))} "
        f"| {ms(max(base))} |",
        f"| round trip, {r['open']} sockets asking at once | {len(lat)} | {ms(pct(lat, 50))} | {ms(pct(lat, 99))} "
        f"| {ms(max(lat) if lat else None)} |",
        f"| bare embedding of one question (this process) | {len(emb)} | {ms(pct(emb, 50))} | {ms(pct(emb, 99))} "
        f"| {ms(max(emb))} |",
    ]
    notes = [
        "",
        f"- Sockets: {r['sockets']} asked for, {r['open']} open (in {r['open_seconds']:.1f} s, 50 opening at once) "
        f"over 2 web processes, each on its own session; one question per socket, all asked at once, answered in "
        f"{r['ask_seconds']:.1f} s ({len(lat) / max(r['ask_seconds'], 1e-9):.1f} answers/s).",
        f"- Errors: {len(r['open_errors'])} sockets failed to open, {r['error_frames']} error frames (the "
        f"client then resends the same client_id, as the widget does), {len(r['errors'])} questions unanswered"
        + (f" (first: {(r['open_errors'] + r['errors'])[0]})" if r["open_errors"] or r["errors"] else "")
        + f"; ERROR lines in the web processes' logs: {len(r['log_errors'])}"
        + (f" (first: {r['log_errors'][0][:160]})" if r["log_errors"] else "") + ".",
        f"- Memory: web processes' RSS {r['rss_before_kib'] / 1024:.0f} MiB before the sockets, "
        f"{r['rss_after_kib'] / 1024:.0f} MiB with them open ({r['kib_per_socket']:.1f} KiB per socket), "
        f"{r['rss_end_kib'] / 1024:.0f} MiB after the questions.",
        f"- Embedding: {how}. Inside the servers (their /metrics, whole run): KB search (embedding included) "
        f"{r['kb_search'][0] * 1000:.0f} ms mean over {r['kb_search'][1]} searches; web reply written -> "
        f"published to the socket {r['delivery'][0] * 1000:.0f} ms mean over {r['delivery'][1]}.",
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs shared with other jobs; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average at the end "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}.",
    ]
    return "\n".join(rows + notes)


def bare_encoder() -> tuple[Any, str]:
    """The servers' embedder (bundled model, the default backend), its export reused from the soak's cache."""
    from bench.soak_stack import ONNX_CACHES
    from bot.settings import Settings
    from kb_index import Embedder

    backend = Settings.model_fields["embed_backend"].default
    cache = next((c for c in ONNX_CACHES if c.is_dir()), ONNX_CACHES[0])
    emb = Embedder.load(None, backend=backend, cache_dir=cache)
    return (lambda t: emb.encode([t])), f"kb_index.Embedder, bundled all-MiniLM-L6-v2, {backend}, one thread"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=180.0, help="per question, seconds")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sockets = max(1, min(args.sockets, 2000))
    questions = load_questions(ROOT / "tests" / "fixtures" / "sample_questions.jsonl", 200)
    r = asyncio.run(asyncio.wait_for(run(sockets, questions, args.timeout, print), args.timeout * 3 + 900))
    encode, how = bare_encoder()
    for q in questions[:5]:
        encode(q)
    emb = [time_encode(encode, q) for q in questions[:100]]
    body = table(r, emb, how)
    print(body)
    if not args.no_write:
        update_results(args.results, body, "python bench/webchat_load.py " + " ".join(sys.argv[1:]), section=SECTION)
    return 1 if r["errors"] or r["open_errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
