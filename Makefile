# kubetune developer entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c .ci/constraints.txt

.PHONY: setup setup-trainer quickstart lint unit test crds constraints clean

$(BIN)/kubetune: pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(PIP) -e ".[dev]"
	touch $@

setup: $(BIN)/kubetune

# torch for the trainer tests; the operator itself never needs it
$(VENV)/.trainer: $(BIN)/kubetune trainer-image/requirements.txt
	$(PIP) -r trainer-image/requirements.txt
	touch $@

setup-trainer: $(VENV)/.trainer

quickstart: setup
	$(BIN)/kubetune run examples/quickstart.yaml

lint: setup
	$(BIN)/ruff check operator tests bench trainer-image
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup setup-trainer
	$(BIN)/pytest tests/unit

test: lint unit

crds: setup
	$(BIN)/kubetune crd --write crds

constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^kubetune' | (echo "# Exact versions CI and the Makefile install (pip -c). Regenerate with: make constraints"; cat) > .ci/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
