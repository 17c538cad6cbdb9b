# Two entry points: `make demo` and `make test`. Each creates .venv when missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean stac-server browser

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PY) not found)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/coalign demo

# the STAC API Transaction tests need PostgreSQL/PostGIS and stac-fastapi-pgstac (own venv);
# without root the install is skipped and those tests skip with the reason (CI requires them)
stac-server:
	@bash .ci/install-stac-server.sh || [ -z "$$COALIGN_REQUIRE_STAC_SERVER" ]

# the catalog view tests drive headless Chromium (Debian chromium + chromium-driver); without
# root the install is skipped and those tests skip with the reason (CI requires them)
browser:
	@bash .ci/install-browser.sh || [ -z "$$COALIGN_REQUIRE_BROWSER" ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint stac-server browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .venv-stacapi coalign-work
