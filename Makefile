# Two commands do all the set-up: `make run` and `make test` create .venv from requirements.txt first.
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: run test lint format

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

run: $(VENV)/.installed  ## print what `pulumi up` would deploy for STACK (default dev)
	$(PY) -m local.plan --stack $(STACK)

test: $(VENV)/.installed  ## the whole test suite
	$(PY) -m pytest

lint: $(VENV)/.installed  ## ruff lint and format check, as CI runs them
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
