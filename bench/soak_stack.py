"""What the chaos soak runs against: PostgreSQL, Redis, fake Slack and Twilio behind fault proxies,
and the Procfile's `web` and `worker` processes as real OS processes (bench/soak.py drives it).

Everything listens on 127.0.0.1. PostgreSQL and Redis are started the way the tests start them
(tests/fixtures/pg.py, tests/fixtures/redis.py). The processes run the Procfile's commands with
``switchboard`` spelled ``python -m bot`` (the same entry point, this interpreter) and
``--host 0.0.0.0`` narrowed to 127.0.0.1; each has its own log file in the run folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fakes import slack as fake_slack
from tests.fakes.faults import FaultProxy, Faults
from tests.fakes.server import serve
from tests.fakes.twilio import FakeTwilio
from tests.fixtures.pg import PgCluster
from tests.fixtures.redis import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
SLACK_SECRET = "soak-signing-secret"
SLACK_TOKEN = fake_slack.BOT_TOKEN
TWILIO_SID = "AC" + "5" * 32
TWILIO_TOKEN = "soak-twilio-auth-token"
TWILIO_FROM = "+15550001111"
AGENTS_CHANNEL = "C0AGENTS"
AGENT_USER = "U0AGENT1"
PUBLIC_URL = "http://127.0.0.1:8000"  # what Twilio signs (a proxy would forward to each web process)
HANDOFF_TEXT = "Passed to our team; a person will reply here."


def procfile_commands(path: Path = ROOT / "Procfile") -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            name, cmd = line.split(":", 1)
            out[name.strip()] = cmd.strip()
    return out


def argv_for(command: str, port: int | None) -> list[str]:
    """A Procfile command as argv: ${PORT:-8000} filled in, loopback only, this interpreter."""
    cmd = command.replace("${PORT:-8000}", str(port or 8000)).replace("$PORT", str(port or 8000))
    args = shlex.split(cmd)
    if args and args[0] == "switchboard":
        args = [sys.executable, "-m", "bot", *args[1:]]
    return ["127.0.0.1" if a == "0.0.0.0" else a for a in args]


@dataclass
class Proc:
    kind: str  # web | worker
    name: str
    argv: list[str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """Services and processes for one soak run; `start()` then `stop()` (always)."""

    faults: Faults
    web: int = 2
    workers: int = 2
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sb-soak-")))
    pg: PgCluster | None = None
    redis: RedisServer | None = None
    database_url: str = ""
    twilio: FakeTwilio = field(default_factory=lambda: FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN))
    slack: fake_slack.FakeSlack = field(default_factory=fake_slack.FakeSlack)
    procs: list[Proc] = field(default_factory=list)
    kills: list[tuple[float, str]] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    keep_folder: bool = False  # keep the processes' logs and the index after stop()
    _servers: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _proxies: list[FaultProxy] = field(default_factory=list)

    # ---- start / stop -------------------------------------------------------------------------

    async def start(self, log: Any = None) -> None:
        t0 = time.monotonic()

        def step(what: str) -> None:
            if log is not None:
                log(f"  {time.monotonic() - t0:5.1f} s  {what}")

        self.pg = PgCluster()
        await asyncio.to_thread(self.pg.start)
        self.database_url = await asyncio.to_thread(self.pg.create_database)
        self.redis = RedisServer()
        await asyncio.to_thread(self.redis.start)
        self.slack.users[AGENT_USER] = "Ada Agent"
        slack_url = await self._servers.enter_async_context(serve(self.slack.app()))
        twilio_url = await self._servers.enter_async_context(serve(self.twilio.app(), ws="none"))
        slack_proxy = FaultProxy(int(slack_url.rsplit(":", 1)[1]), self.faults, label="slack")
        twilio_proxy = FaultProxy(int(twilio_url.rsplit(":", 1)[1]), self.faults, label="twilio")
        for p in (slack_proxy, twilio_proxy):
            await p.start()
            self._proxies.append(p)
        self.slack.base_url = slack_proxy.url + "/api/"
        self.twilio.url = twilio_proxy.url
        self.env = self._env(slack_proxy.url + "/api/", twilio_proxy.url)
        step("PostgreSQL, Redis, fakes up")
        await self._run_once([sys.executable, "-m", "bot", "migrate"], "migrate")
        step("migrated")
        seeded = _seed_onnx(self.folder / "index" / "onnx")
        await self._run_once([sys.executable, "-m", "bot", "kb", "ingest", str(ROOT / "kb" / "sample")], "ingest")
        if not seeded:
            _keep_onnx(self.folder / "index" / "onnx")
        step("index built" + (" (ONNX export reused)" if seeded else " (ONNX export made and kept)"))
        commands = procfile_commands()
        for i in range(self.web):
            port = free_port()
            self.procs.append(Proc("web", f"web.{i + 1}", argv_for(commands["web"], port),
                                   self.folder / f"web.{i + 1}.log", port=port))
        for i in range(self.workers):
            self.procs.append(Proc("worker", f"worker.{i + 1}", argv_for(commands["worker"], None),
                                   self.folder / f"worker.{i + 1}.log"))
        for proc in self.procs:
            self._spawn(proc)
        await asyncio.gather(*(self.wait_ready(p, 240) for p in self.procs))
        step("web and worker processes ready")

    def _env(self, slack_base: str, twilio_base: str) -> dict[str, str]:
        multiproc = self.folder / "prometheus"
        multiproc.mkdir(exist_ok=True)
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        return {
            **keep,
            "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url, "REDIS_URL": self.redis.url if self.redis else "",
            "INDEX_DIR": str(self.folder / "index"), "KB_PATH": str(ROOT / "kb" / "sample"),
            "SECRET_KEY": "soak-" + "s" * 40, "PUBLIC_BASE_URL": PUBLIC_URL,
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING",
            "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "SLACK_API_BASE_URL": slack_base, "SLACK_AGENTS_CHANNEL": AGENTS_CHANNEL, "SLACK_TIMEOUT": "3",
            "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_FROM_NUMBER": TWILIO_FROM,
            "TWILIO_API_BASE_URL": twilio_base,
            # delivery tuned for a short run: a killed worker's lease runs out in 10 s
            "SEND_TIMEOUT": "3", "OUTBOX_LEASE_SECONDS": "10", "OUTBOX_BACKOFF_INITIAL": "0.2",
            "OUTBOX_BACKOFF_MAX": "3", "OUTBOX_POLL_SECONDS": "0.2",
            # 20 % of *every* platform call fails here, and a retried Slack delivery makes two calls
            # (look for the post, then post): 8 attempts all fail with p ~ 0.2 * 0.36^7 ~ 1.6e-4, about
            # one dead letter per 6,000 Slack entries, which is the designed outcome of running out of
            # attempts, not a loss. 20 attempts (at most ~1 min with this backoff) make that ~1e-9.
            "OUTBOX_MAX_ATTEMPTS": "20",
            "HANDOFF_MESSAGE": HANDOFF_TEXT, "CSAT_ENABLED": "false", "SLA_CHECK_SECONDS": "0",
            # every customer comes from 127.0.0.1: per-address session minting must not throttle them
            "WEB_SESSIONS_PER_MINUTE": "1000000", "WEB_RATE_PER_MINUTE": "120",
            **self.extra_env,
        }

    async def _run_once(self, argv: list[str], name: str) -> None:
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(*argv, env=self.env, cwd=self.folder, stdout=out,
                                                        stderr=subprocess.STDOUT)
            code = await asyncio.wait_for(proc.wait(), 600)
        if code != 0:
            raise RuntimeError(f"{name} failed ({code}): {log.read_text()[-2000:]}")

    def _spawn(self, proc: Proc) -> None:
        out = proc.log.open("ab")
        proc.popen = subprocess.Popen(proc.argv, env=self.env, cwd=self.folder, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        proc.starts += 1

    async def wait_ready(self, proc: Proc, limit: float) -> None:
        deadline = time.monotonic() + limit
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                assert proc.popen is not None
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
                if proc.kind == "web":
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(proc.url + "/readyz")).status_code == 200:
                            return
                elif b"delivering:" in proc.log.read_bytes():
                    return
                await asyncio.sleep(0.3)
        raise RuntimeError(f"{proc.name} not ready after {limit:.0f} s")

    def web_urls(self) -> list[str]:
        return [p.url for p in self.procs if p.kind == "web"]

    async def kill_one(self, rng: random.Random, start: float) -> Proc:
        """SIGKILL a random process (its whole group), then start it again with the same command."""
        proc = rng.choice(self.procs)
        assert proc.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.popen.wait)
        self.kills.append((time.monotonic() - start, proc.name))
        if proc.kind == "web":
            proc.log.open("ab").close()
        self._spawn(proc)
        return proc

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.popen is not None and proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in self.procs:
            if proc.popen is not None:
                try:
                    await asyncio.to_thread(proc.popen.wait, 20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.popen.pid, signal.SIGKILL)
        for proxy in self._proxies:
            await proxy.stop()
        with contextlib.suppress(Exception):
            await self._servers.aclose()
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop)
        if not self.keep_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def logs(self) -> dict[str, str]:
        return {p.name: p.log.read_text(errors="replace") for p in self.procs if p.log.exists()}


ONNX_CACHES = (ROOT / "var" / "soak-onnx", ROOT / "var" / "onnx")  # var/ is not in git


def _seed_onnx(dst: Path) -> bool:
    """The model's ONNX export is made once per model (~40 s with torch): reuse a kept one."""
    for src in ONNX_CACHES:
        if src.is_dir() and any(src.glob("*/model.onnx")):
            shutil.copytree(src, dst, dirs_exist_ok=True)
            return True
    return False


def _keep_onnx(src: Path) -> None:
    if src.is_dir() and any(src.glob("*/model.onnx")):
        with contextlib.suppress(OSError):
            shutil.copytree(src, ONNX_CACHES[0], dirs_exist_ok=True)


def error_lines(logs: dict[str, Any]) -> list[str]:
    """JSON log lines at ERROR or above (unhandled exceptions, failed bot turns)."""
    import json

    out = []
    for name, text in logs.items():
        for line in text.splitlines():
            if '"level"' not in line:
                if line.startswith("Traceback"):
                    out.append(f"{name}: {line}")
                continue
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if str(rec.get("level", "")).upper() in ("ERROR", "CRITICAL"):
                    out.append(f"{name}: {rec.get('logger')}: {str(rec.get('msg'))[:200]}")
    return out
