SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

VENV ?= .venv
PY := $(VENV)/bin/python
BUF := node_modules/.bin/buf
PROTOS := $(shell find proto -name '*.proto' | sort)
CONFIGS := $(shell find proto -name '*_grpc_service_config.json' | sort)
GENERATED := casino/.generated
# buf breaking compares the contracts with the previous commit of main.
AGAINST ?= .git\#ref=HEAD~1

.PHONY: help install system proto lint test demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

install: system $(VENV)/.installed node_modules/.installed ## Virtualenv, Python dependencies, buf, generated code

system: ## Debian packages the tests use (installed when run as root, else listed)
	scripts/system-packages

$(VENV)/.bootstrap:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q 'grpcio-tools>=1.66' 'mypy-protobuf>=3.6'
	touch $@

# The editable install maps the `casino` package, so the code is generated before it.
$(VENV)/.installed: pyproject.toml $(VENV)/.bootstrap $(GENERATED)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

proto: $(GENERATED) ## Generate Python messages, gRPC stubs and .pyi type stubs

$(GENERATED): $(PROTOS) $(CONFIGS) $(VENV)/.bootstrap
	rm -rf casino
	mkdir -p casino
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. \
		--mypy_out=. --mypy_grpc_out=. $(PROTOS)
	for config in $(CONFIGS); do cp "$$config" "$${config#proto/}"; done
	find casino -type d -exec touch {}/__init__.py {}/py.typed \;
	touch $@

lint: install ## ruff, buf lint/format/breaking, import boundaries, mypy (strict) on the code, benchmarks and tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(BUF) lint
	$(BUF) format --diff --exit-code
	if git rev-parse -q --verify HEAD~1:proto >/dev/null; then \
		$(BUF) breaking --against '$(AGAINST)'; \
	else echo "buf breaking: no previous commit with contracts, nothing to compare"; fi
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy casino_kit casino_cli session_svc game_svc rng_svc wallet_svc ingest_svc edge_relay bench tests

test: install ## The whole test suite (needs PostgreSQL and Redis on loopback, see README)
	$(PY) -m pytest --ignore=tests/media
	scripts/in-test-netns $(PY) -m pytest tests/media

demo: install ## Run the platform on embedded defaults with simulated players
	$(VENV)/bin/casino demo

bench: install ## Every benchmark; results in bench/results/ (relay in its own network namespace)
	$(VENV)/bin/casino bench all
	scripts/in-test-netns $(VENV)/bin/casino bench relay

clean: ## Remove the virtualenv, node_modules and generated code
	rm -rf $(VENV) node_modules casino
