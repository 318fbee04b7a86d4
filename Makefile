# Two commands on a fresh machine: `make run` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test fuzz lint bench docs clean

$(STAMP): pyproject.toml ingest/native/_fastpath.c
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Serves OTLP/HTTP + API on :4318 and OTLP/gRPC on :4317 over ./lake
# (TASKLAKE_LAKE and TASKLAKE_CONFIG are read by tasklake itself).
run: $(STAMP)
	$(BIN)/tasklake serve

lint: $(STAMP)
	$(BIN)/ruff check ingest schemas service tests bench
	$(BIN)/ruff format --check ingest schemas service tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# The fuzz properties (tests/ingest/test_fuzz_*.py) with many more examples than `make test`
# runs: FUZZ_EXAMPLES per property (default 5000), a fresh random seed each run.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q --timeout 0 \
		--hypothesis-show-statistics tests/ingest/test_fuzz_otlp.py tests/ingest/test_fuzz_http.py

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

docs: $(STAMP)
	$(BIN)/python -m service.docs README.md

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
