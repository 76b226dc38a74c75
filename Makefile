# Every target sets up what it needs: on a fresh clone, `make test` and `make serve` just work.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo web web-screenshot test lint serve token bench bench-full clean

$(PY):
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "tui-collab needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test,dev]'
	touch $@ $(VENV)/.installed-test

## demo: set up and start the app with a local server and four simulated teammates
demo: $(VENV)/.installed-test
	$(VENV)/bin/tui-collab --demo $(DEMO_ARGS)

## web: the app in browser pages on http://127.0.0.1:8000/, one local server shared by all
web: $(VENV)/.installed-test
	$(VENV)/bin/tui-collab web $(WEB_ARGS)

## web-screenshot: redraw docs/images/web.png with the browser test (needs chromium)
web-screenshot: $(VENV)/.installed-test
	TUI_COLLAB_WEB_SCREENSHOT=docs/images/web.png $(PY) -m pytest -q tests/integration/test_web.py

## test: create the venv if needed, install the project with its test extras, run the suite
test: $(VENV)/.installed-test
	$(PY) -m pytest -n auto $(PYTEST_ARGS)

## lint: ruff, mypy and the import contracts (pyproject.toml), as CI runs them
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## serve: a local server on ws://127.0.0.1:9001/ws (token auth, data in ./.data)
serve: $(VENV)/.installed-test
	$(VENV)/bin/tui-collab-server serve --data-dir .data $(SERVE_ARGS)

## token: mint a token for the local server, e.g. `make token USER=alice TEAM=core`
token: $(VENV)/.installed-test
	@$(VENV)/bin/tui-collab-server token --data-dir .data --user $(USER) --team $(TEAM)

## bench: every benchmark once, short (under 5 minutes); bench-full: medians of 3 (paste: 5), as documented
bench: $(VENV)/.installed-test
	$(PY) -m bench.edits --repeats 1 --seconds 3
	$(PY) -m bench.cursors --clients 10,200 --repeats 1 --seconds 5
	$(PY) -m bench.cursors --lockstep --clients 200 --repeats 1 --seconds 5
	$(PY) -m bench.storm --members 100 --joiners 200 --repeats 1
	$(PY) -m bench.restart_storm --clients 100 --repeats 1
	$(PY) -m bench.connections --idle 1000 --joiners 200 --repeats 1
	$(PY) -m bench.app_cursors --repeats 1 --seconds 5
	$(PY) -m bench.paste --repeats 1
	$(PY) -m bench.paste_app --repeats 1
	$(PY) -m bench.notes --repeats 1 --seconds 5

bench-full: $(VENV)/.installed-test
	$(PY) -m bench.edits
	$(PY) -m bench.cursors
	$(PY) -m bench.cursors --lockstep
	$(PY) -m bench.storm
	$(PY) -m bench.restart_storm --repeats 3
	$(PY) -m bench.connections
	$(PY) -m bench.app_cursors
	$(PY) -m bench.paste
	$(PY) -m bench.paste_app
	$(PY) -m bench.notes

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
