# trnsim developer entry points; `make help` lists them. Everything installs what it needs:
# Debian packages (apt, only the missing ones) and pinned Python packages in .venv/.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := all
MAKEFLAGS += --no-print-directory

# The interpreter that creates .venv: found before .venv/bin goes on PATH below.
PYTHON := $(shell command -v python3)
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
CMAKE := $(CURDIR)/$(VENV)/bin/cmake
CTEST := $(CURDIR)/$(VENV)/bin/ctest
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
JOBS ?= $(shell nproc)
export CMAKE_BUILD_PARALLEL_LEVEL := $(JOBS)
FUZZ_SECONDS ?= 60
# Extra options for the wheel build, e.g. PIP_BUILD_ARGS=-Ccmake.build-type=RelWithDebInfo.
PIP_BUILD_ARGS ?=

# Debian 12 packages the build needs (checked with dpkg-query; only missing ones are installed).
APT_PACKAGES := build-essential git python3-dev python3-venv \
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libfmt-dev libbenchmark-dev \
  clang clang-tidy clang-format libclang-rt-14-dev libopenmpi-dev openmpi-bin chromium
# Python packages of .venv, pinned (what pip resolved on 2026-11 for Python 3.11).
# torch and transformers (trnsim.torch, its tests and examples/torch) with every package pip
# resolved for them; torch 2.13.0 is the CPU build (trnsim simulates the device).
PIP_PINS := pip==26.3 numpy==2.4.6 ml_dtypes==0.6.0 pytest==9.2.0 iniconfig==2.3.1 \
  pluggy==1.7.0 Pygments==2.21.0 packaging==26.3 pathspec==1.1.1 \
  pybind11==3.1.0 scikit-build-core==1.1.2 cmake==4.4.4 ninja==1.13.2 \
  torch==2.13.0 filelock==4.3.2 fsspec==2026.9.0 Jinja2==3.1.6 MarkupSafe==3.0.4 \
  networkx==3.6.1 sympy==1.14.0 mpmath==1.3.0 setuptools==84.2.1 typing_extensions==4.16.0 \
  transformers==5.25.0 huggingface_hub==2.4.0 hf-xet==1.8.0 httpx2==2.17.0 httpcore2==2.17.0 \
  h11==0.16.0 anyio==4.16.0 idna==3.21 truststore==0.10.5 kernels==0.19.1 tomlkit==0.15.3 \
  PyYAML==6.0.4 regex==2026.12.2 safetensors==0.8.0 tokenizers==0.23.3 tqdm==4.70.1 \
  typer==0.29.2 click==8.5.1 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 \
  shellingham==1.5.4 annotated-doc==0.0.7 pydantic==2.14.4 pydantic_core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
VENV_STAMP := $(VENV)/.trnsim-deps

# Build folders: build/py (the wheel `make` installs), build/asan (tests under ASan+UBSan),
# build/release (benchmarks), build/fuzz (libFuzzer, clang), build/lint (clang-tidy database).
ASAN_DIR := build/asan
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
CPP_SOURCES = $(shell find src tests tools python/src fuzz bench -name '*.cpp' -o -name '*.h' 2>/dev/null)

.PHONY: all build demo test test-cpp test-python test-slow bench fuzz format format-check lint \
  clean distclean apt-deps help

all: build ## build the C++ core, the Python package and the trnsim CLI into .venv/

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 22

apt-deps: ## install the Debian packages that are missing
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# The venv is (re)filled when it is missing or this Makefile (the pins) changed.
$(VENV_STAMP): Makefile | apt-deps
	@[ -x $(PY) ] || { echo "make: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check $(PIP_PINS)
	@touch $@

build: $(VENV_STAMP) ## (same as `make`)
	$(PY) -m pip install --no-build-isolation --disable-pip-version-check -v \
	  -Cbuild-dir=build/py $(PIP_BUILD_ARGS) .
	@$(PY) -c 'import trnsim, trnsim._trnsim; print("trnsim", trnsim.__version__, "installed in $(VENV)")'
	@$(VENV)/bin/trnsim --version >/dev/null

demo: build ## build, then run the demo job (bf16 matmul + softmax on a simulated trn2 core)
	@mkdir -p build
	$(VENV)/bin/trnsim demo --trace build/demo_trace.json

test: build ## fast tier: C++ tests under ASan+UBSan, fuzz corpus replay, pytest
	@$(MAKE) test-cpp
	@$(MAKE) test-python

$(ASAN_DIR)/build.ninja: $(VENV_STAMP)
	$(CMAKE) -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
	  -DTRNSIM_SANITIZE=ON -DTRNSIM_BUILD_TESTS=ON

test-cpp: $(ASAN_DIR)/build.ninja ## C++ tests (GoogleTest) and fuzz corpus replay, ASan+UBSan
	$(CMAKE) --build $(ASAN_DIR)
	cd $(ASAN_DIR) && $(ASAN_ENV) $(CTEST) --output-on-failure -j $(JOBS) -E Slow -LE slow

test-python: $(VENV_STAMP) ## pytest tests/python (not the slow ones) against the installed package
	@rc=0; $(PY) -m pytest -m "not slow" || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no Python tests collected yet"; rc=0; fi; exit $$rc

test-slow: build $(ASAN_DIR)/build.ninja ## slow tier: C++ tests named *Slow* and pytest -m slow
	$(CMAKE) --build $(ASAN_DIR)
	cd $(ASAN_DIR) && $(ASAN_ENV) $(CTEST) --output-on-failure -j $(JOBS) -R Slow
	@rc=0; $(PY) -m pytest -m slow || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no slow Python tests yet"; rc=0; fi; exit $$rc

# bench/run_bench.py compares against a host bf16 GEMM in PyTorch (CPU); torch is in PIP_PINS
# now, the check below only matters for a .venv made before that.
TORCH_PIN := torch==2.13.0

bench: build ## build bench/*.cpp in Release and run them and bench/*.py (results in bench/results/)
	@$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(CMAKE) -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRNSIM_BUILD_TESTS=OFF \
	  -DTRNSIM_BUILD_BENCH=ON
	$(CMAKE) --build build/release
	$(CMAKE) --build build/release --target bench
	@for f in bench/*.py; do [ -e "$$f" ] || continue; echo "== $$f"; $(PY) "$$f"; done

fuzz: $(VENV_STAMP) ## build the libFuzzer targets with clang and run each FUZZ_SECONDS (60) on its corpus
	$(CMAKE) -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTRNSIM_BUILD_FUZZ=ON -DTRNSIM_BUILD_TESTS=OFF -DTRNSIM_WERROR=OFF
	$(CMAKE) --build build/fuzz
	@targets=$$(cat build/fuzz/fuzz_targets.txt); \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz/*.cpp targets yet"; exit 0; fi; \
	for t in $$targets; do \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS) s (seeds: fuzz/corpus/$$t, new inputs: build/fuzz/corpus/$$t)"; \
	  mkdir -p fuzz/corpus/$$t build/fuzz/corpus/$$t fuzz/artifacts/$$t; \
	  build/fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=fuzz/artifacts/$$t/ build/fuzz/corpus/$$t fuzz/corpus/$$t; \
	done

format: ## clang-format every C++ file in place
	clang-format -i $(CPP_SOURCES)

format-check: ## fail if any C++ file is not clang-formatted
	clang-format --dry-run -Werror $(CPP_SOURCES)

lint: $(VENV_STAMP) ## clang-tidy on src/ and tools/ (config: .clang-tidy)
	$(CMAKE) -S . -B build/lint -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DTRNSIM_BUILD_TESTS=OFF
	run-clang-tidy -quiet -p build/lint -j $(JOBS) '$(CURDIR)/(src|tools)/.*\.cpp$$'

clean: ## remove build/ (keeps .venv/)
	rm -rf build

distclean: clean ## remove build/ and .venv/
	rm -rf $(VENV)
