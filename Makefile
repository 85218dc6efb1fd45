# Squeezer developer entry points. Everything installs from pip wheels into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run serve test lint bench clean fuzz schemathesis hostile cluster-test load chaos

$(BIN)/squeezer: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@# byte-compile our sources now: with PYTHONDONTWRITEBYTECODE set (CI images, containers)
	@# Python would otherwise compile ~60 modules on every start (~65 ms of a cold compress)
	$(BIN)/python -m compileall -q src >/dev/null
	touch $@

install: $(BIN)/squeezer

# Compress the sample PDF Squeezer makes itself (squeezer demo) into ./out and say where the
# result is; FILE=your.pdf (or an image) compresses that instead. Needs nothing beside the checkout.
FILE ?=
run: install
	@mkdir -p out
ifeq ($(strip $(FILE)),)
	$(BIN)/squeezer demo --out-dir out
else
	$(BIN)/squeezer compress $(FILE) --out-dir out
endif

# The HTTP service and the web page on http://127.0.0.1:$(PORT)/ with workers; data in
# ./squeezer-data. `make serve PORT=9000` for another port.
PORT ?= 8000
serve: install
	$(BIN)/squeezer serve --port $(PORT)

test: install
	$(BIN)/python -m pytest -n 2 -q tests

# ruff (the project's rules in pyproject.toml) and mypy on src/, both at pinned versions
lint: install
	$(BIN)/pip install -q -e '.[test,lint]'
	$(BIN)/ruff check src
	$(BIN)/mypy

# The hostile suite alone (it also runs with `make test`)
hostile: install
	$(BIN)/python -m pytest -n 2 -q tests/hostile

# Longer fuzzing, bounded by FUZZ_SECONDS per part (default 300): seeded mutants of the corpus
# in job children, then atheris on our own parsers. Not part of `make test`.
FUZZ_SECONDS ?= 300
fuzz: install
	$(BIN)/pip install -q -e '.[test,fuzz]'
	$(BIN)/python tests/hostile/fuzz.py --seconds $(FUZZ_SECONDS)

# schemathesis over the OpenAPI of a fresh service; exit 0 means zero findings
schemathesis: install
	$(BIN)/pip install -q -e '.[test,fuzz]'
	$(BIN)/python tests/hostile/schemathesis_run.py

# the multi-process deployment (deploy/local-cluster: Debian's PostgreSQL, moto's S3 server,
# 2 API and 3 worker processes, Debian's haproxy in front when installed) brought up, used
# through both APIs and the proxy, and torn down (~1 min)
cluster-test: install
	SQUEEZER_CLUSTER_TESTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_cluster.py

# the load test on deploy/local-cluster with 1, 2, 3 workers and 10,000 queued jobs
# (~20 min; writes bench/results/load.md)
load: install
	nice -n 10 $(BIN)/python bench/load.py --workers 1,2,3 --queue 10000

# faults under load (kill -9 a worker, an API process and the proxy, PostgreSQL restart, bucket
# stopped 30 s, a full temporary disk; ~10 min); exits non-zero if a job was lost or ran twice
# to a visible effect; writes bench/results/chaos.md
chaos: install
	nice -n 10 $(BIN)/python bench/chaos.py

bench: install
	$(BIN)/python bench/pdf_bench.py

clean:
	rm -rf $(VENV) out
