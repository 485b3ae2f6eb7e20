# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv/ on first use and install the `cxrbench` command there.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CX := $(VENV)/bin/cxrbench
STAMP := $(VENV)/.cxrbench-installed
DEMO ?= runs/demo
DEMO_PATIENTS ?= 120
DEMO_SEED ?= 0
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions

.PHONY: venv test test-fast demo clean-demo

venv: $(STAMP)

# torch and torchvision are installed first, pinned together, so that nothing later swaps them.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

test: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-fast: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow"

demo: venv
	$(CX) synth $(DEMO)/data --patients $(DEMO_PATIENTS) --seed $(DEMO_SEED)
	$(CX) index $(DEMO)/data --out $(DEMO)/index
	$(CX) stats $(DEMO)/index --out $(DEMO)/stats

clean-demo:
	rm -rf $(DEMO)
