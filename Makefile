# login-stream developer commands. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One install per Python version: a venv made by another Python is made anew.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
STAMP := $(VENV)/.installed-$(PYTHON_VERSION)
BROKER := $(PY) -m devtools.local_broker
KAFKA_PORT ?= 9092
# The test broker gets its own port so a running demo never shares topics or state with it.
TEST_KAFKA_PORT ?= 39092
# The suite in two worker processes (pytest-xdist) sharing the one broker: most integration
# tests wait on intervals closing and processors starting, not on the CPU, so two workers
# nearly halve the suite's time also on two cores. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
# Everything installed, pinned: the product's own set (what the image installs) and the same
# set with the test and lint tools (what make installs). `make lock` makes both anew.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_COMPILE := $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --quiet

.PHONY: install lock lint test test-cluster test-bounces test-time-jumps demo kafka-up kafka-down bench compose-check clean

install: $(STAMP)

$(STAMP): $(DEV_LOCK) pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The product's set is resolved within the whole one, so both pin the same versions.
lock: | $(STAMP)
	$(UV_COMPILE) --extra test -o $(DEV_LOCK)
	$(UV_COMPILE) --constraint $(DEV_LOCK) -o $(LOCK)

# Go tools, built from the Go module proxy once per checkout (not per venv): actionlint, helm,
# promtool (the alerting rules' check and unit tests), and fluxcheck (devtools/fluxcheck: Flux
# manifests decoded strictly into Flux's API types).
TOOLS := .tools/bin
ACTIONLINT := $(TOOLS)/actionlint
ACTIONLINT_VERSION := v1.7.12
HELM := $(TOOLS)/helm
HELM_VERSION := v4.3.2
PROMTOOL := $(TOOLS)/promtool
PROMTOOL_VERSION := v0.316.0
FLUXCHECK := $(TOOLS)/fluxcheck
CHART := charts/login-stream
PRODUCTION_VALUES := deploy/flux/values-production.yaml
FLUX_MANIFESTS := $(filter-out $(PRODUCTION_VALUES),$(wildcard deploy/flux/*.yaml))
RENDERED := build/chart

$(ACTIONLINT):
	GOBIN=$(abspath $(TOOLS)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

$(HELM):
	GOBIN=$(abspath $(TOOLS)) go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

$(PROMTOOL):
	GOBIN=$(abspath $(TOOLS)) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

$(FLUXCHECK): $(wildcard devtools/fluxcheck/*.go) devtools/fluxcheck/go.mod devtools/fluxcheck/go.sum
	cd devtools/fluxcheck && GOBIN=$(abspath $(TOOLS)) go install .

lint: $(STAMP) $(ACTIONLINT) $(HELM) $(FLUXCHECK) $(PROMTOOL)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(ACTIONLINT)
	$(HELM) lint --strict --quiet $(CHART)
	$(HELM) lint --strict --quiet $(CHART) --values $(PRODUCTION_VALUES)
	mkdir -p $(RENDERED)
	$(HELM) template login-stream $(CHART) > $(RENDERED)/default.yaml
	$(HELM) template login-stream $(CHART) --values $(PRODUCTION_VALUES) > $(RENDERED)/production.yaml
	$(VENV)/bin/kubernetes-validate --strict --quiet $(RENDERED)/default.yaml $(RENDERED)/production.yaml
	$(FLUXCHECK) $(FLUX_MANIFESTS)
	$(PROMTOOL) check rules $(CHART)/files/alerts.yaml
	$(PROMTOOL) test rules deploy/prometheus/alerts_test.yaml

test: lint
	@if [ -n "$$KAFKA_BOOTSTRAP_SERVERS" ]; then \
	  echo "Using the Kafka broker at $$KAFKA_BOOTSTRAP_SERVERS"; \
	  $(VENV)/bin/pytest -n $(TEST_WORKERS); \
	else \
	  trap '$(BROKER) down --port $(TEST_KAFKA_PORT)' EXIT; \
	  $(BROKER) up --port $(TEST_KAFKA_PORT) && \
	  KAFKA_BOOTSTRAP_SERVERS=localhost:$(TEST_KAFKA_PORT) $(VENV)/bin/pytest -n $(TEST_WORKERS); \
	fi

# The three-broker cluster test (its own cluster, each broker killed in turn under a restarted
# processor; about 2 minutes), apart from `make test` for its length; `.ci/run` runs it too.
test-cluster: $(STAMP)
	$(VENV)/bin/pytest -m "cluster and not bounces" tests/test_cluster_kafka.py

# Brokers hard-bounced and restarted in a rolling upgrade under live input and two processors,
# two of three brokers down (shorter and longer than COMMIT_STALL_SECONDS), and a broker frozen
# mid-commit (about 10 minutes); prints the summaries' longest pause per failover. `.ci/run`
# runs it too.
test-bounces: $(STAMP)
	$(VENV)/bin/pytest -m bounces -p no:cacheprovider tests/test_cluster_kafka.py tests/test_commit_stall_kafka.py

# The randomized time-jump test of the first stage and the merge (no broker), at length:
# `make test` runs 150 scenarios, this 3,000 (about 10 minutes); TIME_JUMP_SCENARIOS=N for more.
TIME_JUMP_SCENARIOS ?= 3000
test-time-jumps: $(STAMP)
	TIME_JUMP_SCENARIOS=$(TIME_JUMP_SCENARIOS) $(VENV)/bin/pytest -q tests/test_time_jumps.py

demo: $(STAMP)
	@KAFKA_PORT=$(KAFKA_PORT) bash scripts/demo.sh

# The benchmark starts its own broker on a port of its own unless KAFKA_BOOTSTRAP_SERVERS is set.
# BENCH_ARGS="--events 50000 --rounds 1" for a quick look, "--partitions 4 --instances 2" for
# the pipeline scaled out; see docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# Needs a Docker engine with compose (and the base images); not part of `make test`.
compose-check: $(STAMP)
	$(PY) scripts/compose_check.py

kafka-up: $(STAMP)
	$(BROKER) up --port $(KAFKA_PORT)

kafka-down: $(STAMP)
	$(BROKER) down --port $(KAFKA_PORT)

clean:
	rm -rf $(VENV) .venv-* .tools build/chart state .mypy_cache .ruff_cache .pytest_cache
