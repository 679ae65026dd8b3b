# Every command the README and CI use. The virtualenv lives in .venv (created on demand).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint format bench soak clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

# One command to run the whole system on embedded defaults (SQLite + local Redis) against
# the built-in simulator.
run: install
	$(BIN)/hyperwatch up --feed sim

# The test command (README). Real PostgreSQL, Redis and Celery processes; < 10 minutes.
test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/bench_bulk_insert.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
