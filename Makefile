# Squeezer developer entry points. Everything installs from pip wheels into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run serve test lint bench clean cluster-test

$(BIN)/squeezer: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/squeezer

# Compress a sample PDF from the shared corpus (or FILE=...) and print the summary.
FILE ?= $(firstword $(wildcard ../shared/corpus/pdf/pdfjs__tracemonkey.pdf) $(wildcard ../shared/corpus/pdf/*.pdf))
run: install
	@mkdir -p out
	$(BIN)/squeezer compress $(FILE) --out-dir out

# The HTTP service on http://127.0.0.1:8000 with workers; data in ./squeezer-data.
serve: install
	$(BIN)/squeezer serve

test: install
	$(BIN)/python -m pytest -n 2 -q tests

# ruff (the project's rules in pyproject.toml) and mypy on src/, both at pinned versions
lint: install
	$(BIN)/pip install -q -e '.[test,lint]'
	$(BIN)/ruff check src
	$(BIN)/mypy

# the multi-process deployment (deploy/local-cluster: Debian's PostgreSQL, moto's S3 server,
# 2 API and 3 worker processes) brought up, used through both APIs and torn down (~1 min)
cluster-test: install
	SQUEEZER_CLUSTER_TESTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_cluster.py

bench: install
	$(BIN)/python bench/pdf_bench.py

clean:
	rm -rf $(VENV) out
