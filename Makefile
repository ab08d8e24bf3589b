# Developer entry points. `make test` is the test command (README, .ci/run).
# Everything runs from the project's own venv in .venv, created by `make setup`.

VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.jobwire-installed

.PHONY: system-packages setup test broker generate check-generated lint buf-lint clean

## setup: create .venv and install jobwire editable with the dev extra (again only on change)
setup: $(STAMP)

# pip's chatter goes to $(VENV)/pip.log and is shown only when the install fails.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --upgrade pip -e '.[dev]' \
		>$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log >&2; exit 1; }
	touch $@

## test: run the whole test suite (PYTEST_ARGS=... to narrow it)
test: setup system-packages node-setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## system-packages: install missing Debian packages the tests need (redis-server, Node, Go)
system-packages:
	@scripts/install-system-packages.sh

## broker: run a broker with an embedded Redis under ./jobwire-data
broker: setup
	$(BIN)/jobwire broker

## generate: regenerate the committed stubs of every language (Python, sdk/node, sdk/go) and docs/api.md from proto/
generate: setup node-setup
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/generate.sh

## check-generated: fail when the committed stubs differ from what proto/ generates
check-generated: generate
	git diff --exit-code --stat -- $(GENERATED)
	@untracked="$$(git ls-files --others --exclude-standard -- $(GENERATED))"; \
	if [ -n "$$untracked" ]; then echo "not committed: $$untracked" >&2; exit 1; fi

# Node and Go SDKs: the generated stubs of every language, and the toolchains that build them.
GENERATED := sdk/python/jobwire/v1 sdk/node/src/gen sdk/go/gen docs/api.md
NODE_STAMP := sdk/node/node_modules/.package-lock.json
.PHONY: node-setup sdk-node sdk-go

## node-setup: install sdk/node's exact toolchain (protoc-gen-es, tsc) from its package-lock.json
node-setup: $(NODE_STAMP)
$(NODE_STAMP): sdk/node/package-lock.json
	cd sdk/node && npm ci --no-audit --no-fund

## sdk-node: build the TypeScript SDK into sdk/node/dist
sdk-node: node-setup
	cd sdk/node && npm run -s build

## sdk-go: build the Go SDK and its examples offline from Debian's Go packages (see sdk/go)
sdk-go:
	sdk/go/build.sh vet

## lint: ruff, mypy and buf lint
lint: setup buf-lint
	$(BIN)/ruff check .
	$(BIN)/mypy

buf-lint: setup
	$(BIN)/buf lint

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
