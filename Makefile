# Two set-up commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/flujo-trio
STAMP := $(VENV)/.installed
DB ?= flujo_trio.db

.PHONY: test test-all lint types unit docs demo bench bench-flujo bench-stores bench-ray clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint types unit docs

lint: $(STAMP)
	$(VENV)/bin/ruff check flujo_trio tests benchmarks examples
	$(VENV)/bin/ruff format --check flujo_trio tests benchmarks examples

types: $(STAMP)
	$(VENV)/bin/mypy --strict flujo_trio

unit: $(STAMP)
	$(VENV)/bin/pytest

# The unit tests on every supported Python: 3.11 in .venv (as `make unit`), the others
# from pyenv, each in its own venv (build/venv-3.12, ...), built on first use and
# reinstalled when pyproject.toml changes.
PYTHONS ?= 3.12 3.13

test-all: unit
	@set -e; for version in $(PYTHONS); do \
		prefix=$$(pyenv prefix $$version 2>/dev/null | head -n1) || true; \
		test -n "$$prefix" -a -x "$$prefix/bin/python$$version" || \
			{ echo "Python $$version not found (pyenv install $$version)"; exit 1; }; \
		venv=build/venv-$$version; \
		if [ ! -f $$venv/.installed ] || [ pyproject.toml -nt $$venv/.installed ]; then \
			test -x $$venv/bin/python || "$$prefix/bin/python$$version" -m venv $$venv; \
			$$venv/bin/python -m pip install --quiet --upgrade pip; \
			$$venv/bin/python -m pip install --quiet -e '.[dev]'; \
			touch $$venv/.installed; \
		fi; \
		echo "== Python $$version"; \
		$$venv/bin/pytest -p no:cacheprovider; \
	done

# The documentation site, warnings as errors (its examples run in the unit tests).
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The main job through the CLI on the default SQLite store: a run that pauses for a
# person (exit code 4), a scripted answer that resumes it, then the stored step tree
# and the demo's latest runs (read from the store without the pipeline's code).
demo: $(STAMP)
	@run_id=demo-$$($(PY) -c 'import uuid; print(uuid.uuid4().hex[:8])'); \
	echo "== flujo-trio run (pauses for approval)"; \
	$(CLI) run examples/demo_pipeline.py:runner --input "agent pipelines" \
		--db $(DB) --run-id $$run_id; code=$$?; \
	test $$code -eq 4 || { echo "expected the run to pause (exit 4), got $$code"; exit 1; }; \
	echo "== flujo-trio resume $$run_id (scripted approval)"; \
	$(CLI) resume $$run_id --input '{"approved": true, "note": "ship it"}' --db $(DB) || exit 1; \
	echo "== flujo-trio runs show $$run_id"; \
	$(CLI) runs show $$run_id --db $(DB) || exit 1; \
	echo "== flujo-trio runs list --pipeline demo --limit 3"; \
	$(CLI) runs list --pipeline demo --limit 3 --db $(DB)

# Speed, memory, governance and cancellation next to the raw-Trio floor (< 10 min).
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m benchmarks.run_all

# The same, plus the incumbent (Flujo 0.6.11) in its own Python 3.13 venv, and both
# peers' budgets at 1000 branches too (pydantic-ai's take half a minute there).
bench-flujo: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m benchmarks.run_all --with-flujo --peer-ks 10,100,1000

# Journal cost per step and runs per second, SQLite vs PostgreSQL (starts a throwaway
# server unless FLUJO_TRIO_BENCH_POSTGRES_DSN is set).
bench-stores: $(STAMP)
	$(PY) -m benchmarks.stores

# Fan-out on Ray: a local two-CPU cluster, 1,000 CPU-bound items here and on 1 or 2
# workers: overhead per item, budget overshoot, breach to all cancelled (a few minutes).
bench-ray: $(STAMP)
	$(PY) -m benchmarks.ray_fanout

clean:
	rm -rf $(VENV) build/venv-3.* .bench-flujo-venv docs/_build .mypy_cache .pytest_cache .ruff_cache
