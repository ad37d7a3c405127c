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

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

app: $(VENV)/.test-installed
	$(BIN)/attnlab app $(ARGS)

lab: $(VENV)/.test-installed
	$(PIP) -e ".[test,notebook]"
	$(BIN)/jupyter lab notebooks/

install: $(VENV)/.core-installed
install-test: $(VENV)/.test-installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The core: enough for `attnlab demo/train/generate/eval`.
$(VENV)/.core-installed: $(DEPS) | $(BIN)/python
	$(PIP) -e .
	@touch $@

# Everything the labs, the app, the notebooks and the tests use.
$(VENV)/.test-installed: $(DEPS) | $(BIN)/python
	$(PIP) -e ".[test]"
	@touch $@ $(VENV)/.core-installed

clean-venv:
	rm -rf $(VENV)
