# Taperoom: `make run` installs on first use and serves every app; `make test` runs all checks.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORPUS ?= ../shared/corpus
# pytest-xdist processes for `make test` (auto: one per CPU)
TEST_WORKERS ?= auto
SAMPLE := $(CORPUS)/scanner/real_music_tagged/06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav

.PHONY: run test lint typecheck pytest browser postgres redis bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# First run: give the ephemeral app a real recording to serve.
audio/.seeded:
	mkdir -p audio metadata data
	if [ -f "$(SAMPLE)" ] && [ -z "$$(ls audio/*.wav 2>/dev/null)" ]; then \
		cp "$(SAMPLE)" "audio/John Garner - Tempo di Borea (BWV1002).wav"; fi
	touch $@

# First run of the library: a new database gets the corpus's scanner folder as a
# library folder, scanned at start (`make run SEED_FOLDER=` adds none).
SEED_FOLDER ?= $(abspath $(CORPUS)/scanner)

run: $(VENV)/.installed audio/.seeded
	SEED_FOLDER="$(SEED_FOLDER)" $(BIN)/taperoom serve

# Browser tests drive Debian's Chromium through Playwright; install it when missing.
browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# Library tests run against a throwaway PostgreSQL cluster; install the server when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
		else sudo apt-get update -qq && \
			sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; fi; }

# The shared analysis queue's tests start their own redis-server; install it when missing.
redis:
	@command -v redis-server >/dev/null 2>&1 || test -x /usr/bin/redis-server || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
		else sudo apt-get update -qq && \
			sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; fi; }

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench migrations

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev browser postgres redis
	$(BIN)/pytest -q --durations=25 -n $(TEST_WORKERS) --dist worksteal

test: lint typecheck pytest

bench: $(VENV)/.installed-dev browser
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/ephemeral.py
	$(BIN)/python bench/library_scan.py
	$(BIN)/python bench/library_page.py
	$(BIN)/python bench/recorder.py

# Long fuzzing (not part of `make test`, which runs a short fixed sample of the same):
# schemathesis over each app's OpenAPI document on a real server, with response
# conformance checks, and the container/WAV property tests with many more examples.
fuzz: $(VENV)/.installed-dev
	TAPEROOM_FUZZ=1 $(BIN)/pytest -q -o timeout=0 tests/test_fuzz_openapi.py \
		tests/audio/test_containers_properties.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
