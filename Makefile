# Two commands on a fresh machine: `make run` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The dashboard tests drive a real headless Chromium: Debian's, installed once if missing
# (Playwright is handed it; nothing downloads a browser at test time).
CHROMIUM := $(VENV)/.chromium

.PHONY: run demo test test-s3 lint fuzz bench docs clean

$(STAMP): pyproject.toml ingest/convert/native/_fastpath.c
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Serves OTLP/HTTP + API on :4318 and OTLP/gRPC on :4317 over ./lake
# (TASKLAKE_LAKE and TASKLAKE_CONFIG are read by tasklake itself).
run: $(STAMP)
	$(BIN)/tasklake serve

# A few days of demo agent traffic into the server `make run` started (see the README's tour).
demo: $(STAMP)
	$(BIN)/tasklake demo --url http://localhost:4318

$(CHROMIUM): | $(STAMP)
	command -v chromium >/dev/null 2>&1 || { \
		AS_ROOT=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$AS_ROOT apt-get update -q && \
		$$AS_ROOT env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	command -v chromium >/dev/null 2>&1
	touch $(CHROMIUM)

lint: $(STAMP)
	$(BIN)/ruff check ingest schemas service tests bench
	$(BIN)/ruff format --check ingest schemas service tests bench
	$(BIN)/mypy

test: lint $(CHROMIUM)
	$(BIN)/pytest -q -n auto --dist worksteal

# The same suite with every test's lake on an S3-compatible store: one moto server the run
# starts itself (tests/s3.py); tests about a local lake's files (local_lake) are skipped.
test-s3: lint
	TASKLAKE_TEST_LAKE=s3 $(BIN)/pytest -q -n auto --dist worksteal

# The property-based tests (pytest -m fuzz: hypothesis, schemathesis) with many more cases
# than `make test` runs and a fresh seed (tests/fuzzing.py; FUZZ_EXAMPLES cases per property).
fuzz: $(STAMP)
	TASKLAKE_FUZZ=1 $(BIN)/pytest -q -m fuzz --timeout 0 --hypothesis-show-statistics

# every benchmark and one summary table (README, Performance); BENCH=<module> for one,
# BENCH_QUICK=1 for a smoke run on small sizes
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

docs: $(STAMP)
	$(BIN)/python -m service.docs README.md

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis tests/artifacts
