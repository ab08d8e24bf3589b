# Developer entry points. `make test` is the test command (README, .ci/run).
# Everything runs from the project's own venv in .venv, created by `make setup`.

VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.jobwire-installed

.PHONY: setup test broker generate check-generated lint buf-lint clean

## setup: create .venv and install jobwire editable with the dev extra (again only on change)
setup: $(STAMP)

# pip's chatter goes to $(VENV)/pip.log and is shown only when the install fails.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --upgrade pip -e '.[dev]' \
		>$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log >&2; exit 1; }
	touch $@

## test: run the whole test suite (PYTEST_ARGS=... to narrow it)
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## broker: run a broker with an embedded Redis under ./jobwire-data
broker: setup
	$(BIN)/jobwire broker

## generate: regenerate the committed stubs in sdk/python/jobwire/v1 from proto/
generate: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/generate.sh

## check-generated: fail when the committed stubs differ from what proto/ generates
check-generated: generate
	git diff --exit-code --stat -- sdk/python/jobwire/v1
	@untracked="$$(git ls-files --others --exclude-standard -- sdk/python/jobwire/v1)"; \
	if [ -n "$$untracked" ]; then echo "not committed: $$untracked" >&2; exit 1; fi

## lint: ruff, mypy and buf lint
lint: setup buf-lint
	$(BIN)/ruff check .
	$(BIN)/mypy

buf-lint: setup
	$(BIN)/buf lint

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
