#!/usr/bin/env bash
# Regenerate the initial migration from the models (pre-release only: there are no deployed databases yet).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -f bot/migrations/versions/0001_*.py
tmp=$(mktemp -d)
.venv/bin/python - "$tmp" <<'PY'
import sys
from alembic import command
from bot.migrate import alembic_config
cfg = alembic_config(f"sqlite+aiosqlite:///{sys.argv[1]}/gen.db")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001_initial")
PY
rm -rf "$tmp"
.venv/bin/ruff format -q bot/migrations/versions/ || true
