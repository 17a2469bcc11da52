# Each target does its own setup from a fresh clone: it installs uv (from PyPI) when missing,
# then `uv sync` installs every workspace member editable into .venv.
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: setup demo test lint bench clean

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

lint: setup
	$(UV) run --locked ruff check .
	$(UV) run --locked mypy

bench: setup
	$(UV) run --locked python benchmarks/run.py

clean:
	rm -rf .venv .pytest_cache carbonkit-logs
