# Two set-up commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint types unit demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint types unit

lint: $(STAMP)
	$(VENV)/bin/ruff check flujo_trio tests benchmarks examples
	$(VENV)/bin/ruff format --check flujo_trio tests benchmarks examples

types: $(STAMP)
	$(VENV)/bin/mypy --strict flujo_trio

unit: $(STAMP)
	$(VENV)/bin/pytest

demo: $(STAMP)
	$(PY) examples/demo.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
