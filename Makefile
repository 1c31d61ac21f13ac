# Two commands do all the set-up on a fresh machine:
#   make run    creates .venv, installs the project, runs the main job on the bundled digits
#   make test   creates .venv, installs the project with its test tools, runs ruff and pytest
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY = true
export PYTHONUNBUFFERED = 1

.PHONY: run test install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

run: install
	$(BIN)/kedro run --pipeline=gpe_full

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest
