# Each target does its own setup from a fresh clone: it installs uv (from PyPI) when missing,
# then `uv sync` installs every workspace member editable into .venv.
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: setup demo test test-distributed lint bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.9,<0.14"
	@$(UV) sync --locked --quiet

demo: setup
	$(UV) run --locked python examples/train.py

test: setup
	@# The HTML report tests open the page in a real headless Chromium: CI installs it from
	@# Debian's packages; elsewhere those tests skip when Chromium is absent.
	@if [ -n "$$CI" ]; then sh tests/reports/install_chromium.sh; fi
	$(UV) run --locked ruff check .
	$(UV) run --locked mypy
	$(UV) run --locked pytest

# Real multi-process jobs (torchrun on gloo) need torch: its CPU build goes into a separate
# virtual environment, .venv-frameworks, with the workspace packages the jobs use
# (tests/distributed skips without torch, so `make test` passes without it).
FRAMEWORKS_VENV := .venv-frameworks
test-distributed:
	@test -x $(FRAMEWORKS_VENV)/bin/python || $(PYTHON) -m venv $(FRAMEWORKS_VENV)
	@# "+cpu" names the CPU build: pip never falls back to a CUDA build of the same version.
	@$(FRAMEWORKS_VENV)/bin/python -c "import torch" 2>/dev/null || \
		$(FRAMEWORKS_VENV)/bin/pip install --quiet "torch==2.13.0+cpu"
	@$(FRAMEWORKS_VENV)/bin/pip install --quiet -e core -e plugins/nvml -e plugins/rapl -e plugins/intensity_static \
		-e plugins/cpu_estimate pytest
	$(FRAMEWORKS_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/distributed

lint: setup
	$(UV) run --locked ruff check .
	$(UV) run --locked mypy

bench: setup
	$(UV) run --locked python benchmarks/run.py

clean:
	rm -rf .venv $(FRAMEWORKS_VENV) .pytest_cache carbonkit-logs
