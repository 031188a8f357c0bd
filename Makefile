# kubetune developer entry points. `make test` is what CI runs (.ci/run).
#
#   make quickstart   set up .venv and run examples/quickstart.yaml locally
#   make test         lint + unit + cluster + e2e (needs root: it runs the offline cluster of hack/cluster)
#   make unit         unit tests only (no cluster; builds helm once for the chart tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c .ci/constraints.txt
# the pinned kubectl, helm and kubeconform that hack/cluster/build.sh caches
TOOLS_PATH = $(shell hack/cluster/bin-path.sh 2>/dev/null)
PYTEST = PATH="$(TOOLS_PATH):$$PATH" $(BIN)/pytest

.PHONY: setup setup-trainer tools quickstart lint unit cluster-tests e2e test bench crds constraints clean

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

# Kubernetes binaries, helm, kubeconform: built from the Go module proxy once, then cached
tools:
	hack/cluster/build.sh

quickstart: setup
	$(BIN)/kubetune run examples/quickstart.yaml

lint: setup
	$(BIN)/ruff check operator tests bench trainer-image hack
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup setup-trainer tools
	$(PYTEST) tests/unit

# the operator against a real API server and node (the offline cluster is started when none is up)
cluster-tests: setup tools
	$(PYTEST) -m cluster tests/cluster

# Helm install, images built and loaded, a real PyTorch experiment; a separate session so the
# cluster tests' out-of-cluster operator is gone before the chart's operator starts
e2e: setup tools
	$(PYTEST) -m e2e tests/e2e

test: lint unit cluster-tests e2e

bench: setup
	$(BIN)/pip install -q --no-deps HEBO==0.3.6
	$(BIN)/pip install -q -c .ci/constraints.txt -r bench/requirements.txt
	$(BIN)/python -m bench.optimizers

crds: setup
	$(BIN)/kubetune crd --write crds
	$(BIN)/python -m kubetune.chartgen

constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^kubetune' | (echo "# Exact versions CI and the Makefile install (pip -c). Regenerate with: make constraints"; cat) > .ci/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
