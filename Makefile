# Each target does its own setup from a fresh clone: it installs uv (from PyPI) when missing,
# then `uv sync` installs every workspace member editable into .venv.
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: setup demo test test-frameworks test-distributed lint bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.9,<0.14"
	@$(UV) sync --locked --quiet

demo: setup
	$(UV) run --locked python examples/train.py

test: setup
	@# The HTML report tests open the page in a real headless Chromium, and the Prometheus
	@# exporter is scraped by a real Prometheus server: CI installs both from Debian's packages;
	@# elsewhere those tests skip when they are absent.
	@if [ -n "$$CI" ]; then sh tests/install_test_tools.sh; fi
	$(UV) run --locked ruff check .
	$(UV) run --locked mypy
	$(UV) run --locked pytest
	$(MAKE) test-frameworks

# The framework callbacks against the real frameworks (PyTorch Lightning, Hugging Face transformers,
# Keras 3 on torch) and real multi-process jobs (torchrun on gloo), in an environment of their own
# made with pip: pip takes the CPU build of torch pinned in requirements/frameworks.txt, where uv
# would fetch a CUDA build of several GB. tests/frameworks and tests/distributed skip in .venv.
FRAMEWORKS_VENV := .venv-frameworks
FRAMEWORKS_PACKAGES := -e core -e plugins/nvml -e plugins/rapl -e plugins/intensity_static -e plugins/cpu_estimate
$(FRAMEWORKS_VENV)/.installed: requirements/frameworks.txt core/pyproject.toml
	@test -x $(FRAMEWORKS_VENV)/bin/python || $(PYTHON) -m venv $(FRAMEWORKS_VENV)
	$(FRAMEWORKS_VENV)/bin/python -m pip install --quiet -r requirements/frameworks.txt
	$(FRAMEWORKS_VENV)/bin/python -m pip install --quiet $(FRAMEWORKS_PACKAGES)
	@touch $@

test-frameworks: $(FRAMEWORKS_VENV)/.installed
	KERAS_BACKEND=torch HF_HUB_OFFLINE=1 $(FRAMEWORKS_VENV)/bin/python -m pytest -p no:cacheprovider tests/frameworks tests/distributed

test-distributed: $(FRAMEWORKS_VENV)/.installed
	$(FRAMEWORKS_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/distributed

lint: setup
	$(UV) run --locked ruff check .
	$(UV) run --locked mypy

bench: setup
	$(UV) run --locked python benchmarks/run.py

clean:
	rm -rf .venv $(FRAMEWORKS_VENV) .pytest_cache carbonkit-logs
