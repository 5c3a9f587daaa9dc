# Everything a developer or CI runs. `make test` and `make dev` set up .venv/ first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install kafka test test-unit test-service test-connected test-faults test-e2e e2e-tools lint format typecheck schemas rules dashboards docs lock dev broker bench-ingest bench-recall bench-metrics bench-alerts bench clean

$(INSTALLED): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

install: $(INSTALLED) ## create .venv/ with pinned dependencies and the roadmap-monitor command

kafka: $(INSTALLED) ## Apache Kafka's jars (deploy/kafka/pom.xml), resolved by Maven once into ~/.cache/roadmap-monitor
	@$(BIN)/python -m services.common.apache_kafka

# Tests run on WORKERS parallel pytest-xdist workers, each with its own broker, ports and
# topics; a test file stays on one worker (module fixtures are shared). Most of the time is
# spent waiting on brokers and services, not on the CPU, so 3 workers suit 2 cores.
WORKERS ?= 3
PYTEST := $(BIN)/pytest -n $(WORKERS) --dist loadfile --durations=15

test: $(INSTALLED) kafka e2e-tools ## every tier: unit, service, connected (real broker), e2e (about 3 minutes); the fault suite is make test-faults
	$(PYTEST) -m "not faults"

test-unit test-service test-connected: test-%: $(INSTALLED) kafka
	$(PYTEST) -m "$* and not faults"

test-faults: $(INSTALLED) kafka ## the fault suite (connected tier, about 3 minutes): kills, outages, poison, failing receivers
	$(PYTEST) -m faults

test-e2e: $(INSTALLED) kafka e2e-tools
	$(PYTEST) -m e2e

E2E_PACKAGES := prometheus prometheus-alertmanager chromium chromium-driver
e2e-tools: ## the e2e tier's real Prometheus, Alertmanager and Chromium: Debian's packages, installed if missing and root
	@if command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null \
	  && command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's $(E2E_PACKAGES) for the e2e tier"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends $(E2E_PACKAGES) >/dev/null \
	  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $(E2E_PACKAGES) >/dev/null; }; \
	else \
	  echo "the e2e tier needs Prometheus, Alertmanager and Chromium: on Debian/Ubuntu run" \
	       "'sudo apt-get install $(E2E_PACKAGES)'; elsewhere put 'prometheus'," \
	       "'prometheus-alertmanager' (or 'alertmanager'), 'chromium' and 'chromedriver' on PATH"; \
	fi

lint: $(INSTALLED) ## ruff, and lint-imports: pure modules import no I/O (pyproject's [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(INSTALLED)
	$(BIN)/mypy

schemas: $(INSTALLED) ## regenerate contracts/schemas/ from the models
	$(BIN)/python -m contracts.schema_files

rules: $(INSTALLED) ## regenerate deploy/prometheus/rules/ from deploy/roadmap.yaml and deploy/alerts.yaml
	$(BIN)/roadmap-monitor rules

dashboards: $(INSTALLED) ## regenerate deploy/grafana/dashboards/ from deploy/roadmap.yaml
	$(BIN)/roadmap-monitor dashboards

docs: $(INSTALLED) ## regenerate docs/asyncapi/ and docs/openapi.json from the services and contracts
	$(BIN)/python -m services.commands.asyncapi
	$(BIN)/python -m services.ingest.openapi

lock: $(INSTALLED) ## re-pin constraints.txt from what is installed
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^roadmap-monitor'; } > constraints.new
	mv constraints.new constraints.txt

dev: $(INSTALLED) ## run the whole system locally on the embedded broker, with the demo feed (ARGS="--no-demo" ...)
	$(BIN)/roadmap-monitor dev $(ARGS)

broker: $(INSTALLED) ## run only the embedded broker on 127.0.0.1:9092
	$(BIN)/roadmap-monitor broker

EVENTS ?= 200000
bench: $(INSTALLED) kafka ## the whole pipeline on Apache Kafka (Java perf tools as anchor) and on the embedded broker, in interleaved rounds (EVENTS=N): docs/benchmarks.md, .json, .png
	$(BIN)/python -m benchmarks.pipeline --events $(EVENTS)

bench-ingest: $(INSTALLED) ## measure ingest against a bare pass-through (EVENTS=N); writes docs/benchmarks/
	$(BIN)/python -m benchmarks.ingest --events $(EVENTS)

WINDOW ?= 100000
bench-recall: $(INSTALLED) ## ingest's start-up with and without refilling a dedup window of WINDOW ids
	$(BIN)/python -m benchmarks.recall --events $(WINDOW)

bench-alerts: $(INSTALLED) ## evaluation rate, snapshot-to-notification latency, delivery rate
	$(BIN)/python -m benchmarks.alerts

bench-metrics: $(INSTALLED) ## fold rate, service rate, latency at 1,000 events/s, memory after 1M shipments
	$(BIN)/python -m benchmarks.metrics

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
