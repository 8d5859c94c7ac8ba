"""The rooms' import contracts (pyproject.toml, import-linter) hold on the tree, and a forbidden
import added anywhere is caught, so the contracts cannot rot into something that always passes.

docs/architecture.md explains the rooms and what each may import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "channels", "kb_index", "handoff")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the packages under `root` (they are what gets imported there)."""
    script = Path(sys.executable).with_name("lint-imports")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "importlinter.cli"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [*command, "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def contract(fragment: str) -> str:
    names = [c["name"] for c in CONTRACTS if fragment in c["name"]]
    assert len(names) == 1, (fragment, names)
    return str(names[0])


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout
    for c in CONTRACTS:
        assert c["name"] in " ".join(result.stdout.split()), c["name"]


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four packages' Python files and pyproject.toml, copied so each case can break one."""
    root = tmp_path_factory.mktemp("tree")
    keep_py = shutil.ignore_patterns("__pycache__", "*.js", "*.css", "*.html", "*.json", "*.ini", "*.mako",
                                     "web_static", "*.md", "*.txt")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, root / name, ignore=keep_py)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


CASES = [
    # (module to edit, code appended to it, the contract that must break, the import it must name)
    # Each module is picked so that only its own contract breaks: e.g. not handoff.policy, which
    # bot.settings imports, so a bot import there breaks the bot layers as well.
    ("channels/sms.py", "import bot.settings\n", "channels import from bot", "channels.sms -> bot.settings"),
    ("channels/webchat.py", "from bot import store\n", "channels import from bot", "channels.webchat -> bot.store"),
    ("handoff/summary.py", "import bot.models\n", "handoff imports neither", "handoff.summary -> bot.models"),
    ("handoff/sla.py", "def _late() -> None:\n    import channels.base\n", "handoff imports neither",
     "handoff.sla -> channels.base"),  # an import inside a function counts too
    ("kb_index/index.py", "from bot.models import Message\n", "kb_index imports no bot",
     "kb_index.index -> bot.models"),
    ("kb_index/store.py", "import bot.settings\n", "kb_index imports no bot", "kb_index.store -> bot.settings"),
    ("bot/engine.py", "import channels.sms\n", "bot.agents and bot.conversations import no channels",
     "bot.engine -> channels.sms"),
    ("bot/agents.py", "import channels.webchat\n", "bot.agents and bot.conversations import no channels",
     "bot.agents -> channels.webchat"),
    ("bot/worker.py", "import channels.slack_blocks\n", "only bot.app and bot.desk",
     "bot.worker -> channels.slack_blocks"),
    ("bot/store.py", "import bot.engine\n", "bot layers", "bot.store -> bot.engine"),
    ("bot/conversations.py", "import bot.agents\n", "bot layers", "bot.conversations -> bot.agents"),
    ("bot/engine.py", "import bot.desk.routing_tags\n", "bot layers", "bot.engine -> bot.desk.routing_tags"),
    ("bot/messages.py", "import bot.db\n", "bot layers", "bot.messages -> bot.db"),
]


@pytest.mark.parametrize(("module", "code", "fragment", "expected"), CASES, ids=[c[3] for c in CASES])
def test_a_forbidden_import_is_caught(tree_copy: Path, module: str, code: str, fragment: str, expected: str) -> None:
    path = tree_copy / module
    assert path.exists(), f"{module} is gone: pick another module for this case"
    original = path.read_text()
    path.write_text(original + "\n\n" + code)
    try:
        result = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    out = " ".join(result.stdout.split())
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract(fragment)} BROKEN" in out, result.stdout
    assert expected in out, result.stdout
    assert f"Contracts: {len(CONTRACTS) - 1} kept, 1 broken." in out, result.stdout


def test_the_copy_is_what_gets_checked(tree_copy: Path) -> None:
    """The cases above fail because of the copy, not the installed checkout: unchanged, it passes."""
    result = lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
