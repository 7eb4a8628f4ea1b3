# Two commands do all the set-up: `make run` and `make test` create .venv from requirements.lock first.
VENV ?= .venv
PY := $(VENV)/bin/python
# The stack (default dev), or a stack file beyond the root (CONFIG=examples/products/Pulumi.products.yaml,
# as `pulumi --config-file`): its name Pulumi.<stack>.yaml names the stack unless STACK does.
STACK ?=
CONFIG ?=
STACK_OPTIONS = $(if $(CONFIG),--config-file $(CONFIG)) $(if $(STACK),--stack $(STACK))
# The API's port of `make up` (another for a second stack at once: make up STACK=prod PORT=8081), and
# the emulator's (0: any free one).
PORT ?= 8080
EMULATOR_PORT ?= 0
# What `make up` shows of the log lines, all of which are in .local/STACK/logs/: each job's start and
# end and every warning and error; LOGS=all every line; LOGS=worker,producer those functions' lines too.
LOGS ?=
# More `local up` options, e.g. ARGS="--set apiAuth=iam --revoke worker=WriteUsers".
ARGS ?=
# The tool that writes the locks (pip-tools, pinned in requirements-tools.txt), in a venv of its own so
# the project's venv holds requirements.lock alone.
TOOLS_VENV ?= .venv-tools
# Each lock's header records the command that wrote it: these options (tests/test_supply_chain.py).
PIP_COMPILE := $(TOOLS_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: run up plan test bench bench-quick lint format lock

# requirements.lock pins every package with its hashes: pip refuses anything else.
$(VENV)/.installed: requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	touch $@

run: $(VENV)/.installed  ## the demo: dev (or CONFIG's stack, with the CSV files beside it) in local mode, files uploaded and queried, then stopped
	$(PY) -m ingest demo$(if $(CONFIG), --config-file $(CONFIG))

up: $(VENV)/.installed  ## run STACK (default dev) or CONFIG's stack on this machine in local mode, until Ctrl-C
	$(PY) -m ingest local up --from-make $(STACK_OPTIONS) --port $(PORT) --emulator-port $(EMULATOR_PORT) $(if $(LOGS),--logs $(LOGS)) $(ARGS)

plan: $(VENV)/.installed  ## print what `pulumi up` would deploy for STACK (default dev) or CONFIG's stack
	$(PY) -m ingest plan $(STACK_OPTIONS)

test: $(VENV)/.installed  ## the whole test suite
	$(PY) -m pytest

bench: $(VENV)/.installed  ## every benchmark at full scale (under 20 minutes); rewrites BENCHMARKS.md
	$(PY) -m bench

bench-quick: $(VENV)/.installed  ## smaller inputs (under 3 minutes); its report goes beside its results, not BENCHMARKS.md
	$(PY) -m bench --quick

lint: $(VENV)/.installed  ## ruff lint and format check, as CI runs them
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The tool is installed like everything else, from a lock with hashes, into a venv made anew (--clear):
# nothing an earlier, unchecked install left there runs. pip-compile keeps every pin a lock already has
# unless its .txt asks for another version, so only what was edited changes. pip and setuptools are
# pinned in the tools' lock too (--allow-unsafe): pip-compile resolves with that pip.
lock:  ## regenerate requirements.lock and requirements-tools.lock (after editing requirements.txt or requirements-tools.txt)
	python3 -m venv --clear $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-tools.lock
	$(PIP_COMPILE) --allow-unsafe --output-file requirements-tools.lock requirements-tools.txt
	$(PIP_COMPILE) --output-file requirements.lock requirements.txt
