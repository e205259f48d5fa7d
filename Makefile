# The two commands of the README: `make run` and `make test`. Both bootstrap .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest fuzz bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# `make run PORT=8123` (or FARMACY_PORT=8123 make run) chooses the API's port; 8000 by default.
run: $(STAMP)
	FARMACY_STORE=$${FARMACY_STORE:-sqlite} FARMACY_DATA_DIR=$${FARMACY_DATA_DIR:-./var} \
		$(BIN)/farmacy run $(if $(PORT),--port $(PORT))

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy domain application projections interfaces ops

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The long schemathesis pass: every operation as every role, 200 fuzzed examples each (the
# suite runs 15; FARMACY_FUZZ_EXAMPLES=N sets any other number).
fuzz: $(STAMP)
	FARMACY_FUZZ_EXAMPLES=$${FARMACY_FUZZ_EXAMPLES:-200} $(BIN)/pytest tests/e2e/test_http_schema.py

bench: $(STAMP)
	$(BIN)/python -m ops.bench.hot_fridge

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
