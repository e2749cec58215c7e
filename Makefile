# The two commands a user needs: `make test` (and, later, `make demo`). Everything they need is
# installed here, into .venv and node_modules, so a fresh clone works on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
SYS_STAMP := $(VENV)/.system-packages
PYTEST_ARGS ?=

.PHONY: install test lint constraints sandbox demo demo-check bench bench-alert bench-triggerer bench-scale soak soak-states clean

# Debian's chromium (browser tests) and libmariadb-dev (mysqlclient builds against it), when missing.
$(SYS_STAMP): scripts/system-packages.sh
	bash scripts/system-packages.sh
	mkdir -p $(VENV) && touch $@

# uv installs what pip would, from the same pins (constraints.txt), in seconds rather than minutes: it links
# files from its cache and compiles no bytecode up front (Python compiles each module on first import). pip stays
# in the venv for `make constraints` and for users; tests/deploy/test_pip_install.py installs with pip itself.
UV_VERSION := 0.13.10

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip uv==$(UV_VERSION)

$(PY_STAMP): $(SYS_STAMP) $(BIN)/python requirements.txt requirements-dev.txt constraints.txt sandbox/pyproject.toml
	$(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e sandbox
	touch $@

# Azurite (the Azure Blob emulator), tsc and eslint (make lint) come from npm, pinned in package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(PY_STAMP) $(NODE_STAMP)

# constraints.txt from the working install in .venv: every installed distribution at its version, except this
# project and the sandbox (editable installs) and pip itself. Run it after changing requirements*.txt.
constraints: $(PY_STAMP)
	$(BIN)/pip freeze --exclude-editable --exclude tidb-pitr-airflow --exclude tidb-sandbox --exclude uv \
		| grep -v ' @ ' | LC_ALL=C sort -f > constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(PY_STAMP)

# ruff, then the page's bundle: tsc (checkJs, against the API's types; tsconfig*.json) and eslint, from node_modules.
lint: install
	$(BIN)/ruff check .
	npx --no-install tsc -p tsconfig.json
	npx --no-install tsc -p tsconfig.bundle.json
	npx --no-install eslint .

# Three lanes in parallel (scripts/test_lanes.py), the test modules packed by their measured seconds
# (tests/durations.json). A lane whose pytest fails, or collects no test (exit 5), fails `make test`; every lane's
# log is printed whole. TEST_LANES=N sets another number of lanes.
test: lint
	$(BIN)/python scripts/test_lanes.py $(PYTEST_ARGS)

# The sandbox alone: Kubernetes API + simulated TiDB Operator + S3 + Azure Blob, 40 days of history.
sandbox: install
	$(BIN)/python -m tidb_sandbox up --seed-days 40 --kubeconfig kc.yaml

# The whole project on the sandbox: Airflow standalone runs the guard, a snapshot, retention and a restore,
# prints a summary and leaves the UI up (Ctrl-C stops everything). demo-check does the same and exits.
demo: install
	$(BIN)/python scripts/demo.py

demo-check: install
	$(BIN)/python scripts/demo.py --check

# bench_alert in process (about a minute): the RPO watcher's trigger and the notifier, without Airflow around them.
# bench_compare (about a minute): the drill comparison's rows/s on the sandbox against ADMIN CHECKSUM TABLE.
bench: install
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_wait.py
	$(BIN)/python benchmarks/bench_alert.py --mode in-process
	$(BIN)/python benchmarks/bench_compare.py

# The whole alert path through `airflow standalone` (triggerer, scheduler, executor): several minutes.
bench-alert: install
	$(BIN)/python benchmarks/bench_alert.py --mode airflow

# 1000 CR waits in one triggerer process (Airflow's TriggerRunner) against the sandbox, with a shared-watch
# prototype as the comparison: memory per wait, CPU, connections held, reaction latency (about 10 minutes).
bench-triggerer: install
	$(BIN)/python benchmarks/bench_triggerer.py

# 100 clusters on the production-shaped stack (Celery, PostgreSQL, Redis): every guard of a slot and 100
# deferrable snapshots at once; scheduler/triggerer CPU and memory, API requests per minute (30+ minutes).
bench-scale: install
	$(BIN)/python benchmarks/bench_scale.py

# The reliability figure: 50 restore drills at random times, each compared with the source (minutes).
soak: install
	$(BIN)/python benchmarks/soak_restore.py

# The model-based soak: random sequences of user actions, schedule runs, faults and days of virtual time through the
# real DAGs on a manual-clock sandbox, every invariant checked after each step (tests/pitr/model/world.py). A failing
# sequence is shrunk and printed as a replayable program; the last line is one JSON object. Two soaks side by side
# fill the 2 cores (they mostly wait on their sandboxes and Airflow). SOAK_ARGS="--sequences 5 --jobs 1".
SOAK_ARGS ?= --jobs 2
soak-states: install
	$(BIN)/python benchmarks/soak_states.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) node_modules .sandbox .demo .pytest_cache .ruff_cache
