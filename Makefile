# One command per task; each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format demo bench vendor clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)
	$(BIN)/python -m exporter.demo

bench: $(STAMP)
	$(BIN)/python bench/bench_sync.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_query.py --sqlite
	$(BIN)/python bench/bench_history.py --sqlite --deployments 100 --days 30 $(HISTORY_ARGS)

# The explorer's graph layout, vendored with its licence (exporter/web/static/vendor/).
DAGRE_VERSION := 3.1.3
vendor:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent @dagrejs/dagre@$(DAGRE_VERSION) \
	  && tar xzf dagrejs-dagre-$(DAGRE_VERSION).tgz \
	  && cp package/dist/dagre.min.js $(CURDIR)/exporter/web/static/vendor/dagre.min.js \
	  && cp package/LICENSE $(CURDIR)/exporter/web/static/vendor/dagre.LICENSE \
	  && rm -rf $$tmp

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-lineage.db
