# attnlab: two commands on a fresh clone.
#   make demo   train a small GPT on the embedded corpus (~2 min), print samples, write plots
#   make test   run the whole test suite
# Both create (or reuse) the virtual environment .venv and install what they need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c requirements/constraints.txt
DEPS   := pyproject.toml requirements/constraints.txt

.PHONY: demo test install install-test app lab clean-venv

demo: $(VENV)/.core-installed
	$(BIN)/attnlab demo $(ARGS)

# One worker per core (each test runs torch on one thread; tests/conftest.py); PYTEST_ARGS adds flags.
test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

app: $(VENV)/.test-installed
	$(BIN)/attnlab app $(ARGS)

# JupyterLab is in the labs extra, which the test install holds: nothing more to install.
lab: $(VENV)/.test-installed
	$(BIN)/jupyter lab notebooks/

install: $(VENV)/.core-installed
install-test: $(VENV)/.test-installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The core: enough for `attnlab demo/train/generate/eval`.
$(VENV)/.core-installed: $(DEPS) | $(BIN)/python
	$(PIP) -e .
	@touch $@

# Everything the labs, the app, the notebooks, JupyterLab and the tests use
# (the labs extra is also what the offline room kit installs: attnlab room pack, docs/room.md).
$(VENV)/.test-installed: $(DEPS) | $(BIN)/python
	$(PIP) -e ".[test]"
	@touch $@ $(VENV)/.core-installed

clean-venv:
	rm -rf $(VENV)
