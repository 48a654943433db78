# property-analytics: developer entry points. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
PIP       := $(VENV)/bin/pip
PYTEST    := $(VENV)/bin/pytest
KAFKA_SH  := bash tools/kafka/kafka.sh

# The local broker from tools/kafka/kafka.sh. Point KAFKA_BOOTSTRAP_SERVERS at
# another broker to use it instead; then no local broker is started or stopped.
KAFKA_PORT ?= 9092
LOCAL_BOOTSTRAP := 127.0.0.1:$(KAFKA_PORT)
KAFKA_BOOTSTRAP_SERVERS ?= $(LOCAL_BOOTSTRAP)
export KAFKA_PORT KAFKA_BOOTSTRAP_SERVERS
USE_LOCAL_KAFKA := $(filter $(LOCAL_BOOTSTRAP) localhost:$(KAFKA_PORT),$(KAFKA_BOOTSTRAP_SERVERS))

PYTEST_ARGS ?= -v --timeout=900
# e.g. TEST_SELECT="not soak" (the marker must be registered in pyproject.toml)
TEST_SELECT ?=
N ?= 3

.PHONY: help venv system-deps image image-test kafka-up kafka-down kafka-reset kafka-status cluster-up cluster-down cluster-status cluster-reset dr-up dr-down mirror-up mirror-down mirror-status test unit demo workers bench soak docs clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-12s %s\n", $$1, $$2 }'

# --- environment ---------------------------------------------------------------

venv: $(VENV)/.installed ## create .venv and install the package with dev extras

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -e '.[dev]'
	touch $@

system-deps: ## Debian packages the tests need (headless Chromium for tests/browser; podman, runc, debootstrap for tests/image)
	bash tools/ensure-chromium.sh
	bash tools/ensure-podman.sh

# --- local Kafka broker ------------------------------------------------------------

kafka-up: ## start the local Kafka broker (127.0.0.1:9092), downloading it on first use
	$(KAFKA_SH) up

kafka-down: ## stop the local Kafka broker
	$(KAFKA_SH) down

kafka-reset: ## stop the local broker and wipe its data (all topics)
	$(KAFKA_SH) reset

kafka-status: ## is the local broker running?
	$(KAFKA_SH) status

# --- a three-node cluster shaped like production (docs/production.md) ---------------

CLUSTER_SH := bash tools/kafka/cluster.sh

cluster-up: ## start a three-node Kafka cluster (RF 3, min ISR 2) on 127.0.0.1:19092,19094,19096
	$(CLUSTER_SH) up

cluster-down: ## stop the three-node cluster
	$(CLUSTER_SH) down

cluster-status: ## which nodes of the three-node cluster run
	$(CLUSTER_SH) status

cluster-reset: ## stop the three-node cluster and wipe its data
	$(CLUSTER_SH) reset

# --- disaster recovery: a second local broker and MirrorMaker 2 (docs/disaster-recovery.md) ----

DR_PORT ?= 29092
DR_HOME ?= .local/kafka-dr
DR_KAFKA := KAFKA_PORT=$(DR_PORT) KAFKA_HOME_DIR=$(DR_HOME) KAFKA_HEAP_OPTS="-Xms128m -Xmx512m" $(KAFKA_SH)

dr-up: ## start a second local broker, the disaster-recovery cluster (127.0.0.1:29092)
	$(DR_KAFKA) up

dr-down: ## stop the disaster-recovery broker
	$(DR_KAFKA) down

mirror-up: ## MirrorMaker 2 from KAFKA_BOOTSTRAP_SERVERS to the DR broker (config/mirror/mm2.properties)
	PRIMARY_BOOTSTRAP=$(KAFKA_BOOTSTRAP_SERVERS) DR_BOOTSTRAP=$${DR_BOOTSTRAP:-127.0.0.1:$(DR_PORT)} bash tools/kafka/mirror.sh up

mirror-down: ## stop MirrorMaker 2
	bash tools/kafka/mirror.sh down

mirror-status: ## is MirrorMaker 2 running?
	bash tools/kafka/mirror.sh status

# --- tests ---------------------------------------------------------------------

# $(call with_kafka,COMMAND): runs COMMAND with a broker. Starts the local broker unless it
# already runs (or another broker is configured) and always stops the broker it started;
# keeps COMMAND's exit code.
define with_kafka
	@if [ -n "$(USE_LOCAL_KAFKA)" ] && ! $(KAFKA_SH) status >/dev/null 2>&1; then
	  trap '$(KAFKA_SH) down' EXIT
	  $(KAFKA_SH) up
	elif [ -n "$(USE_LOCAL_KAFKA)" ]; then
	  echo "kafka: using the broker that is already running (it will be left running)"
	else
	  echo "kafka: using KAFKA_BOOTSTRAP_SERVERS=$$KAFKA_BOOTSTRAP_SERVERS"
	fi
	$(1)
endef

# `make test` always has a broker (it starts one), so a missing broker fails the run, never skips.
test: venv system-deps ## run all tests against a real broker
	$(call with_kafka,REQUIRE_BROKER=1 $(PYTEST) tests $(if $(TEST_SELECT),-m "$(TEST_SELECT)") $(PYTEST_ARGS))

unit: venv ## run the unit tests only (no broker)
	$(PYTEST) tests/unit $(PYTEST_ARGS)

soak: venv ## long-running fault tests (tests/faults, -m soak)
	$(call with_kafka,$(PYTEST) tests -m soak $(PYTEST_ARGS))

# --- the container image (Dockerfile, docker-compose.yml) ------------------------------

image: ## build the worker image with podman (IMAGE, BASE_IMAGE; a local Debian base under .local/image/ when no registry answers)
	bash tools/ensure-podman.sh
	bash tools/image/build.sh

image-test: venv ## build the image and run it as users would against the broker (tests/image)
	bash tools/ensure-podman.sh
	$(call with_kafka,REQUIRE_BROKER=1 $(PYTEST) tests/image tests/unit/test_compose.py $(PYTEST_ARGS))

# --- running it -------------------------------------------------------------------

demo: venv ## broker + topics + one worker + generator; dashboard on :6066
	bash tools/demo.sh

workers: venv ## start N workers (default 3) on ports 6066.. ; Ctrl-C stops them
	bash tools/workers.sh $(N)

bench: venv ## the benchmark (bench/README.md); BENCH_ARGS="--quick" for a smoke run
	$(PIP) install -q -e '.[bench]'
	$(call with_kafka,$(PY) -m bench $(BENCH_ARGS))

# --- docs -----------------------------------------------------------------------

docs: venv ## regenerate the README's settings table from app/settings.py
	$(PY) tools/settings_table.py --write README.md

clean: ## stop the brokers and MirrorMaker; remove .venv, broker data and logs, data/, caches (keeps the jars)
	$(KAFKA_SH) down || true
	bash tools/kafka/mirror.sh down || true
	$(DR_KAFKA) down || true
	$(CLUSTER_SH) down || true
	rm -rf $(VENV) .local/kafka/data .local/kafka/logs .local/logs data .pytest_cache *.egg-info
	rm -rf $(DR_HOME)/data $(DR_HOME)/logs .local/mirror/logs .local/kafka-cluster
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
