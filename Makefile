# The project's two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install migrate clean bench chaos

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/assistant db upgrade

## Start web, worker, beat and Flower (and the embedded Redis when REDIS_URL is unset).
run: install migrate
	$(BIN)/assistant run

## The whole suite, on PostgreSQL + Redis and on the embedded default.
## pgBackRest (Debian's package) is installed when missing and we are root with apt-get;
## elsewhere the point-in-time recovery test fails, saying how to install it.
test: install
	@command -v pgbackrest >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
		|| { echo "installing pgbackrest (apt-get)"; apt-get update -qq >/dev/null \
		     && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbackrest >/dev/null; } \
		|| echo "could not install pgbackrest: tests/ops/test_pitr.py will fail"
	$(BIN)/python -m tests.preflight
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Speed, measured against raw Celery and a bare endpoint in the same run (needs wrk).
## BENCH_ARGS: e.g. --profile (py-spy), --only http, --rounds 5.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## The full fault suite on throwaway PostgreSQL and Redis servers.
chaos: install
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) var *.egg-info
