PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lock run test lint format bench bench-smoke bench-scale openapi clean messages messages-extract messages-update messages-compile

# Installs exactly what requirements/dev.lock pins (with hashes), so a new upstream release cannot
# change what CI lints and tests against; `make lock` moves the pins on purpose.
$(STAMP): pyproject.toml requirements/dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

lock: ## re-resolve requirements/*.lock from pyproject.toml (the image installs app.lock)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile -q pyproject.toml --generate-hashes --python-version 3.11 -o requirements/app.lock
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements/dev.lock

run: install ## every service behind one gateway on http://127.0.0.1:8000
	$(BIN)/natomedia dev

test: install ## the whole suite; PostgreSQL/Redis/nginx tests skip when unreachable unless required
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check services tests bench soak clients/python
	$(BIN)/ruff format --check services tests bench soak clients/python
	$(BIN)/mypy
	$(BIN)/mypy clients/python/src clients/python/tools
	$(BIN)/python clients/python/tools/generate_models.py --check
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix services tests bench soak clients/python
	$(BIN)/ruff format services tests bench soak clients/python

bench: install ## each service against its limits and fastapi-users; writes bench/results.md
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-smoke: install ## the same harness in seconds (what CI runs); times nothing
	$(BIN)/python bench/run.py --smoke $(BENCH_ARGS)

# Sizes with BENCH_SCALE_ARGS="--rows 1000,10000" (default 1,000, 10,000 and 100,000 rows).
bench-scale: install ## the archive at scale on PostgreSQL and SQLite; writes bench/results-scale.md and .png
	$(BIN)/python bench/scale.py $(BENCH_SCALE_ARGS)

openapi: install ## rewrite the committed API document from the code, and the client's models
	$(BIN)/natomedia openapi > openapi.json
	$(BIN)/python clients/python/tools/generate_models.py

# Mail and problem texts: English in the code, French in the gettext catalogue. The compiled .mo
# is committed, so an install needs no build step; tests/common/test_translations.py fails when a
# text lacks its translation or the .mo is older than the .po.
LOCALE := services/common/locale
POT := $(LOCALE)/natomedia.pot

messages: messages-extract messages-update messages-compile ## all three below, in order

messages-extract: install ## collect the marked texts into the template
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output \
		--no-wrap -o $(POT) services

messages-update: install ## merge the template into each language's catalogue
	$(BIN)/pybabel update -i $(POT) -d $(LOCALE) -D natomedia --no-wrap \
		--no-fuzzy-matching --ignore-obsolete

messages-compile: install ## compile the catalogues for run time
	$(BIN)/pybabel compile -d $(LOCALE) -D natomedia --statistics

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

SOAK_SECONDS ?= 60
.PHONY: soak
soak: install ## bounded mixed load on `natomedia stack` (PostgreSQL, Redis, nginx), then the books
	$(BIN)/python soak/run.py --duration $(SOAK_SECONDS) --results soak/results.md
