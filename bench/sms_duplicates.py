"""Twilio's at-least-once window, measured: SMS replies whose worker is killed mid-send.

    PYTHONPATH=. .venv/bin/python bench/sms_duplicates.py [-n 200] [--late 0.8]

For each reply a worker sends it to the fake Twilio (tests/fakes/twilio.py), which takes the message
at once and answers `--late` seconds later; the worker is killed (its task cancelled: nothing after
that point runs or commits, as with SIGKILL) while the answer is on the way, the lease is expired,
and a second worker claims the entry. Counted: replies the customer received twice, with the
look-up before a resend (bot.sms_deliver.SmsDeliverer) and without it (ChannelDeliverer alone).
Every reply is killed mid-send: the worst case, not a random kill. Figures go in docs/security.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bot.db import Base, import_all_models, make_engine, make_sessionmaker
from bot.settings import Settings
from tests.bot.test_sms_deliver import run_crashes
from tests.channels.sms_support import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, PUBLIC
from tests.fakes.twilio import running_fake


async def one(n: int, late: float, look_up: bool, folder: Path) -> Any:
    import_all_models()
    engine = make_engine(f"sqlite+aiosqlite:///{folder / f'bench-{look_up}.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sm = make_sessionmaker(engine)
    async with running_fake(ACCOUNT_SID, AUTH_TOKEN) as fake:
        settings = Settings(_env_file=None, environment="test", public_base_url=PUBLIC,
                            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                            twilio_from_number=OUR_NUMBER, twilio_api_base_url=fake.url, send_timeout=2.0,
                            answer_threshold=0.6, low_confidence_limit=1)
        run = await run_crashes(sm, settings, fake, replies=n, look_up=look_up, late=late)
    await engine.dispose()
    return run


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--late", type=float, default=0.8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("| deliverer | replies killed mid-send | sent twice | found at Twilio instead | seconds |")
        print("| --- | --- | --- | --- | --- |")
        for look_up in (True, False):
            run = await one(args.n, args.late, look_up, Path(tmp))
            name = "SmsDeliverer (look-up)" if look_up else "ChannelDeliverer (no look-up)"
            print(f"| {name} | {run.replies} | {run.duplicates} | {run.found_instead_of_sent} | {run.seconds:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
