# The two commands of the README: `make dev` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "leadscore needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

dev: $(BIN)/.installed
	$(BIN)/leadscore dev

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The benchmarks of BENCHMARKS.md, one after the other (several minutes; the pipeline and
# speed-to-lead benches start their own Kafka broker).
bench: $(BIN)/.installed
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.decay_index
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.speed_to_lead
	$(BIN)/python -m bench.scaling
	$(BIN)/python -m bench.restore
	$(BIN)/python -m bench.alert_isolation
	$(BIN)/python -m bench.redis_per_lead
	$(BIN)/python -m bench.yaml_bounds

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
