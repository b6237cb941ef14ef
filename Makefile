# Two entry points for a fresh clone: `make demo` runs the main job against the embedded
# emulator, `make test` runs every check CI runs. Both build .venv from nothing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := nexudus_async tests benchmarks examples

.PHONY: test lint typecheck unit demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
		|| { echo "nexudus_async needs Python 3.10 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy nexudus_async

unit: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/nexudus-async demo

bench: $(STAMP)
	$(BIN)/python benchmarks/emulator_speed.py --quick
	$(BIN)/python benchmarks/client_cost.py --quick
	$(BIN)/python benchmarks/quota.py --quick
	$(BIN)/python benchmarks/memory.py --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build dist *.egg-info
