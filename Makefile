# Squeezer developer entry points. Everything installs from pip wheels into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run serve test lint bench clean cluster-test load chaos

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

# the load test on deploy/local-cluster with 1, 2, 3 workers and 10,000 queued jobs
# (~20 min; writes bench/results/load.md)
load: install
	nice -n 10 $(BIN)/python bench/load.py --workers 1,2,3 --queue 10000

# faults under load (kill -9 a worker and an API, PostgreSQL restart, bucket stopped 30 s,
# a full temporary disk); exits non-zero if a job was lost or ran twice to a visible effect
chaos: install
	nice -n 10 $(BIN)/python bench/chaos.py

bench: install
	$(BIN)/python bench/pdf_bench.py

clean:
	rm -rf $(VENV) out
