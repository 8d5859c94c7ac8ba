"""Chaos soak: 2 web + 2 worker processes on PostgreSQL and Redis, platforms that fail, processes
SIGKILLed while customers write; then count what was lost, doubled or reordered.

    .venv/bin/python bench/soak.py --quick                      # 500 messages / 50 customers, 3 kills
    .venv/bin/python bench/soak.py -n 10000 --customers 1000    # the full run
    .venv/bin/python bench/soak.py -n 3000 --customers 300 --no-write

Starts its own PostgreSQL cluster and Redis (as the tests do), fake Slack and Twilio on 127.0.0.1
behind fault proxies (tests/fakes/faults.py: `--fault-rate` of calls get a reset connection, a 5xx,
a 429 with Retry-After, a slow answer or one later than the client's timeout), migrates, builds
the sample KB index once into a shared INDEX_DIR, then starts the Procfile's `web` (x2) and
`worker` (x2) as real processes (bench/soak_stack.py). Customers (bench/soak_clients.py) write
over web chat and SMS; an agent replies from Slack threads to every conversation handed to people;
every 10-20 s a random process is SIGKILLed and started again. When the load is done and the
outbox drained (bounded), bench/soak_check.py counts from the fakes and the database. Prints the
table, updates the "## Chaos soak" section of bench/RESULTS.md, exits 1 if an invariant failed.
Bounded: `--timeout` (hard, whole run) and `--drain` (after the load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.soak_check import count, invariants  # noqa: E402
from bench.soak_clients import HUMAN, Pacer, Record, SmsCustomer, WebCustomer, run_agent, run_customer  # noqa: E402
from bench.soak_stack import Stack, error_lines  # noqa: E402
from tests.fakes.faults import Faults  # noqa: E402

SECTION = "## Chaos soak"


@dataclass
class Config:
    messages: int = 500
    customers: int = 50
    kills: int = 3  # at most; 0: no killer
    kill_every: tuple[float, float] = (10.0, 20.0)
    fault_rate: float = 0.2
    handoff_share: float = 0.15
    rate: float = 10.0  # inbound messages per second, all customers together (0: unpaced)
    concurrency: int = 100  # customers writing at once
    reply_limit: float = 90.0  # how long a customer waits for a reply
    drain: float = 120.0
    timeout: float = 900.0
    seed: int = 14


def plan(cfg: Config, rng: random.Random) -> list[tuple[str, list[str]]]:
    questions = [json.loads(line)["text"] for line in
                 (ROOT / "tests" / "fixtures" / "sample_questions.jsonl").read_text().splitlines() if line.strip()]
    out = []
    for i in range(cfg.customers):
        n = cfg.messages // cfg.customers + (1 if i < cfg.messages % cfg.customers else 0)
        texts = [rng.choice(questions) for _ in range(n)]
        if n > 1 and rng.random() < cfg.handoff_share:
            texts[1] = HUMAN
        out.append(("web" if i % 2 == 0 else "sms", texts))
    return out


async def _killer(stack: Stack, cfg: Config, done: asyncio.Event, rng: random.Random, start: float) -> None:
    while len(stack.kills) < cfg.kills and not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), rng.uniform(*cfg.kill_every))
            return
        except TimeoutError:
            pass
        await stack.kill_one(rng, start)  # restarted at once; the next kill does not wait for it


async def _drained(sessionmaker: Any) -> tuple[int, int]:
    async with sessionmaker() as session:
        owed = (await session.execute(text(
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"))).scalar_one()
        unprocessed = (await session.execute(text(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND processed_at IS NULL"))).scalar_one()
    return int(owed), int(unprocessed)


async def soak(cfg: Config, *, log: Any = print) -> dict[str, Any]:
    from bot.db import make_engine, make_sessionmaker

    rng = random.Random(cfg.seed)
    faults = Faults(rate=cfg.fault_rate, seed=cfg.seed)
    stack = Stack(faults=faults)
    rec = Record()
    t0 = time.monotonic()
    engine = None
    try:
        await asyncio.wait_for(stack.start(log), 420)
        log(f"stack up in {time.monotonic() - t0:.0f} s: {', '.join(p.name for p in stack.procs)} ({stack.folder})")
        engine = make_engine(stack.database_url)
        sm = make_sessionmaker(engine)
        urls = stack.web_urls()
        customers: list[tuple[WebCustomer | SmsCustomer, list[str]]] = []
        by_number: dict[str, SmsCustomer] = {}
        for i, (channel, texts) in enumerate(plan(cfg, rng)):
            crng = random.Random(cfg.seed * 100_003 + i)
            if channel == "web":
                customers.append((WebCustomer(i, urls, rec, crng, cfg.reply_limit), texts))
            else:
                sms = SmsCustomer(i, urls, rec, crng, cfg.reply_limit)
                by_number[sms.number] = sms
                customers.append((sms, texts))
        stack.twilio.on_accept = lambda m: by_number[m["to"]].on_sms(m) if m["to"] in by_number else None
        done, stop_agent = asyncio.Event(), asyncio.Event()
        load_start = time.monotonic()
        killer = asyncio.create_task(_killer(stack, cfg, done, rng, load_start)) if cfg.kills else None
        agent = asyncio.create_task(run_agent(sm, urls, rec, stop_agent, rng))
        pacer, sem = Pacer(cfg.rate), asyncio.Semaphore(cfg.concurrency)
        limits = httpx.Limits(max_connections=cfg.concurrency * 2)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            async def one(cust: WebCustomer | SmsCustomer, texts: list[str]) -> None:
                async with sem:
                    await run_customer(cust, texts, rec, pacer, client, cfg.reply_limit)

            await asyncio.gather(*(one(c, t) for c, t in customers))
            load_seconds = time.monotonic() - load_start
            done.set()
            if killer is not None:
                await killer
            log(f"load done in {load_seconds:.0f} s ({len(rec.sent)} messages, {len(stack.kills)} kills); draining")
            drain_start = time.monotonic()
            owed = unprocessed = -1
            while time.monotonic() - drain_start < cfg.drain:
                owed, unprocessed = await _drained(sm)
                if owed == 0 and unprocessed == 0:
                    break
                await asyncio.sleep(1)
            await asyncio.sleep(2)  # replies published just now reach the sockets
            sem2 = asyncio.Semaphore(100)

            async def sync(cust: WebCustomer | SmsCustomer) -> None:
                async with sem2:
                    await cust.sync(client)

            await asyncio.gather(*(sync(c) for c, _ in customers))
            stop_agent.set()
            await agent
        counts = await count(sm, rec, stack.twilio, stack.slack)
        counts.update(
            messages=cfg.messages, customers=cfg.customers, kills=len(stack.kills),
            kills_by_kind={k: sum(1 for _, n in stack.kills if n.startswith(k)) for k in ("web", "worker")},
            faults=dict(sorted((f"{lab} {kind}", n) for (lab, kind), n in faults.counts.items())),
            fault_total=faults.total(), platform_calls=dict(faults.calls), load_seconds=load_seconds,
            drain_seconds=time.monotonic() - drain_start, drained=owed == 0 and unprocessed == 0,
            wall_seconds=time.monotonic() - t0, log_errors=error_lines(stack.logs()),
        )
        counts["violations"] = invariants(counts, kills_of_senders=len(stack.kills))
        return counts
    finally:
        if engine is not None:
            await engine.dispose()
        await stack.stop()


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1000:.0f}"


def table(c: dict[str, Any], cfg: Config) -> str:
    rows = [
        "| messages (web / sms) | customers | kills (web / worker) | faults injected (of platform calls) "
        "| stored once | replies delivered / owed | duplicates (sms / slack) | order violations | dead letters "
        "| bot reply p50 / p99 (ms) | agent reply p50 / p99 (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {c['inbound_sent']} ({c['inbound_sent_web']} / {c['inbound_sent_sms']}) | {c['customers']} "
        f"| {c['kills']} ({c['kills_by_kind']['web']} / {c['kills_by_kind']['worker']}) "
        f"| {c['fault_total']} (of {sum(c['platform_calls'].values())}) "
        f"| {c['stored_once']} / {c['inbound_sent']} | {c['replies_delivered']} / {c['replies_owed']} "
        f"| {c['duplicates_sms']} / {c['duplicates_slack']} | {c['order_violations']} | {c['dead_letters']} "
        f"| {_ms(c['bot_p50'])} / {_ms(c['bot_p99'])} | {_ms(c['agent_p50'])} / {_ms(c['agent_p99'])} |",
    ]
    notes = [
        "",
        f"- Faults by kind: {', '.join(f'{k} {v}' for k, v in c['faults'].items()) or 'none'}.",
        f"- SMS webhooks delivered twice: {c['sms_twice']}; inbound unprocessed at the end: "
        f"{c['inbound_unprocessed']}; replies never received by the customer: sms {c['sms_delivered_not_at_fake']}, "
        f"web {c['web_delivered_not_seen']}; customers left without a reply within {cfg.reply_limit:.0f} s: "
        f"{c['no_reply']}; agent replies {c['agent_replies_expected']} posted, {c['agent_reply_missing']} missing.",
        f"- Dead letters for transient errors: {c['dead_letters_not_permanent']}"
        + (f" ({'; '.join(c['dead_letter_errors'][:3])})" if c["dead_letter_errors"] else "")
        + f"; web chat reconnects: "
        f"{c['reconnects']}, messages their resumes listed below the highest id already pushed (skipped "
        f"for good by the old resume-after-highest rule): {c['resume_below_highest']}; "
        f"the same message pushed twice to a socket (the widget dedupes by id): "
        f"{c['web_live_dupes']}; Slack posts {c['slack_posts']}.",
        f"- Latency: customer's send -> first reply received (bot: {c['bot_n']} replies; agent: from the "
        f"Slack event to the customer, {c['agent_n']}).",
        f"- ERROR lines in the processes' JSON logs: {len(c['log_errors'])}"
        + (f" (first: {c['log_errors'][0]})" if c["log_errors"] else "") + ".",
        f"- Load {c['load_seconds']:.0f} s, drain {c['drain_seconds']:.0f} s, wall {c['wall_seconds']:.0f} s; "
        f"{os.cpu_count()} CPUs shared with other jobs ({platform.platform()}); "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average at the end "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}.",
        f"- Invariants: {'all held' if not c['violations'] else '; '.join(c['violations'])}.",
    ]
    return "\n".join(rows + notes)


def main() -> int:
    from bench.webchat_roundtrip import update_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--messages", type=int, default=10_000)
    ap.add_argument("--customers", type=int, default=1_000)
    ap.add_argument("--quick", action="store_true", help="500 messages, 50 customers, 3 kills")
    ap.add_argument("--kills", type=int, default=1_000, help="most kills (one every 10-20 s while the load runs)")
    ap.add_argument("--fault-rate", type=float, default=0.2)
    ap.add_argument("--rate", type=float, default=0.0, help="inbound messages per second (0: as fast as replies)")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=1800.0, help="hard limit for the whole run, seconds")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cfg = Config(messages=args.messages, customers=args.customers, kills=args.kills, fault_rate=args.fault_rate,
                 rate=args.rate, concurrency=args.concurrency, timeout=args.timeout)
    if args.quick:
        cfg = Config(timeout=args.timeout)
    counts = asyncio.run(asyncio.wait_for(soak(cfg), cfg.timeout))
    command = "python bench/soak.py " + " ".join(sys.argv[1:])
    body = table(counts, cfg)
    print(body)
    if not args.no_write:
        update_results(args.results, body, command.strip(), section=SECTION)
    return 1 if counts["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
