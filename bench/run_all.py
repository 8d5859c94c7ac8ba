"""`make bench`: every benchmark, in one run, on this machine. Each script updates its own
section of bench/RESULTS.md. The web chat round trip runs against a real server started here
(temporary SQLite database, the sample KB, a free loopback port), stopped at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout).returncode


def webchat() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}", "INDEX_DIR": str(tmp / "index"),
           "KB_PATH": str(ROOT / "kb" / "sample"), "WEB_RATE_PER_MINUTE": "100000",
           "WEB_SESSIONS_PER_MINUTE": "100000", "HF_HUB_OFFLINE": "1"}  # one fresh session per question
    server = subprocess.Popen([str(Path(PY).parent / "switchboard"), "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=open(tmp / "server.log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    print((tmp / "server.log").read_text()[-3000:])
                    return 1
                time.sleep(1)
        return run([PY, "bench/webchat_roundtrip.py", "--url", f"http://127.0.0.1:{port}"], env=env)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    failures = 0
    for script in sorted((ROOT / "bench").glob("kb_*.py")):  # each KB script is independent
        failures += run([PY, f"bench/{script.name}"]) != 0
    failures += webchat() != 0
    print(f"benchmarks done, {failures} failed; figures in bench/RESULTS.md")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
