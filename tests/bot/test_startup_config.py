"""An unsafe configuration refuses to start with a clear message, not a traceback (issue 13, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import create_app

ROOT = Path(__file__).resolve().parents[2]
STRONG = "Zk3s9dQm2LxW8pVt4nRb7yHc1gFj6uEa"


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    clean.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", **env)
    return subprocess.run([sys.executable, "-m", "bot", "serve", "--port", "0"], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("env", "expected"), [
    ({"ENVIRONMENT": "prod", "SECRET_KEY": "a"}, "ENVIRONMENT='prod' is not one of development, test, production"),
    ({"ENVIRONMENT": "Production"}, "SECRET_KEY is the public development value"),
    ({"ENVIRONMENT": "production", "SECRET_KEY": "a"}, "SECRET_KEY is too weak for production"),
    ({"ENVIRONMENT": "production", "SECRET_KEY": STRONG, "WEB_ALLOWED_ORIGINS": "*"}, "WEB_ALLOWED_ORIGINS='*'"),
])
def test_serve_refuses_an_unsafe_configuration_clearly(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    done = _start(tmp_path, **env)
    assert done.returncode == 2
    assert done.stderr.startswith("Switchboard refuses to start") and expected in done.stderr
    assert "Traceback" not in done.stderr


def test_the_uvicorn_factory_refuses_too(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert stopped.value.code == 2 and "ENVIRONMENT='prod'" in capsys.readouterr().err
