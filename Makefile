# kubetune developer entry points. `make test` is what CI runs (.ci/run).
#
#   make quickstart   set up .venv and run examples/quickstart.yaml locally
#   make test         lint + every test tier (needs root: it runs the offline cluster of hack/cluster)
#   make unit         pure-logic unit tests only: no cluster, no root, no torch, no Go build
#
# Slow one-time preparation is a prerequisite of its own, run before any test starts (so no test
# timeout covers it) and cached: `tools` (Kubernetes binaries, helm, kubeconform, built with Go),
# `images` (the pause and Python base images, debootstrap), `e2e-images` (operator and trainer).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c .ci/constraints.txt
# the pinned kubectl, helm and kubeconform that hack/cluster/build.sh caches
TOOLS_PATH = $(shell hack/cluster/bin-path.sh 2>/dev/null)
PYTEST = PATH="$(TOOLS_PATH):$$PATH" $(BIN)/pytest
# A cluster test waits up to 300 s for a condition (wait_for); its own timeout must be above that.
CLUSTER_TIMEOUT = 900
SHELL_SCRIPTS = $(shell git ls-files '*.sh' .ci/run)

.PHONY: setup setup-trainer tools images e2e-images shellcheck chromium quickstart lint unit trainer-tests chart-tests \
	browser-tests cluster-tests e2e test bench-setup bench crds constraints clean

$(BIN)/kubetune: pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(PIP) -e ".[dev,report]"
	touch $@

setup: $(BIN)/kubetune

# torch for the trainer tests; the operator itself never needs it
$(VENV)/.trainer: $(BIN)/kubetune trainer-image/requirements.txt
	$(PIP) -r trainer-image/requirements.txt
	touch $@

setup-trainer: $(VENV)/.trainer

# Kubernetes binaries, helm, kubeconform: built from the Go module proxy once, then cached
tools:
	hack/cluster/build.sh >/dev/null

# the pod sandbox image and the Python base image (debootstrap), made once, then cached
images: tools
	hack/cluster/images.sh

# the images the end-to-end tests install with Helm
e2e-images: images
	hack/build-operator-image.sh
	trainer-image/build.sh

# shellcheck from apt when it is missing (root), else a loud failure
shellcheck:
	@command -v shellcheck >/dev/null || { [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive && \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; } \
	  || { echo "shellcheck is required (apt-get install shellcheck)" >&2; exit 1; }

# headless Chromium from apt for the report's browser test (root), else a loud failure
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive && \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || { echo "chromium is required for the browser tests (apt-get install chromium)" >&2; exit 1; }

quickstart: setup
	$(BIN)/kubetune run examples/quickstart.yaml

lint: setup shellcheck
	$(BIN)/ruff check operator tests bench trainer-image
	$(BIN)/mypy
	$(BIN)/lint-imports
	shellcheck -x $(SHELL_SCRIPTS)

unit: setup
	$(BIN)/pytest tests/unit -m "not torch and not helm and not browser"

# the report page opened in headless Chromium: no console errors, every plot decoded, the table sorts
browser-tests: setup chromium
	$(BIN)/pytest tests/unit -m "browser and not torch"

trainer-tests: setup-trainer
	$(BIN)/pytest tests/unit -m torch

chart-tests: setup tools
	$(PYTEST) tests/unit -m helm

# the operator against a real API server and node (the offline cluster is started when none is up)
cluster-tests: setup tools images
	$(PYTEST) -m cluster tests/cluster --timeout=$(CLUSTER_TIMEOUT)

# Helm install, images built and loaded, a real PyTorch experiment; a separate session so the
# cluster tests' out-of-cluster operator is gone before the chart's operator starts
e2e: setup tools e2e-images
	KUBETUNE_E2E_BUILD=0 $(PYTEST) -m e2e tests/e2e

test: lint unit browser-tests trainer-tests chart-tests cluster-tests e2e

bench-setup: setup-trainer
	$(BIN)/pip install -q --no-deps HEBO==0.3.6
	$(BIN)/pip install -q -c .ci/constraints.txt -r bench/requirements.txt

bench: bench-setup
	$(BIN)/python -m bench.optimizers

crds: setup
	$(BIN)/kubetune crd --write crds
	$(BIN)/python -m kubetune.chartgen

constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^kubetune' | (echo "# Exact versions CI and the Makefile install (pip -c). Regenerate with: make constraints"; cat) > .ci/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
