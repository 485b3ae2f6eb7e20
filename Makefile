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

.PHONY: venv test test-fast demo book clean-demo

venv: $(STAMP)

# torch and torchvision are installed first, pinned together, so that nothing later swaps them.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[train,dev,detect,book]'
	touch $@

test: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-fast: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow"

# The main job on the synthetic default, each step resumable (a rerun skips finished steps):
# generate -> index -> distribution stats -> train the six ablation conditions (tiny config,
# DEMO_STEPS optimizer steps each, DEMO_JOBS at a time: each is a one-thread process) ->
# evaluate each on the test split -> compare with `full`.
CONDITIONS := full no_scene_graph late_fusion resnet18 generic_tokenizer single_head
DEMO_STEPS ?= 1500
DEMO_RESAMPLES ?= 1000
DEMO_IMAGE_SIZE ?= 160
DEMO_JOBS ?= 2

demo: venv
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(MAKE) -j$(DEMO_JOBS) $(DEMO)/compare/comparison.json
	$(MAKE) book BOOK_INPUTS=$(DEMO)
	@echo "demo done: $(DEMO)/stats, $(DEMO)/runs/*/checkpoint, $(DEMO)/eval/*/metrics.json, $(DEMO)/compare/comparison.md, book/_build/html/index.html"

# The report on BOOK_INPUTS (default: book/_config.yml's cxrbench.inputs, the demo's output):
# every notebook is executed (a failing one fails the build); figures and tables in book/_build/.
BOOK_INPUTS ?=
book: venv
	$(if $(BOOK_INPUTS),CXRBENCH_BOOK_INPUTS=$(abspath $(BOOK_INPUTS))) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	  OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/jupyter-book build book/

$(DEMO)/data/synthetic_truth/generator.json: | venv
	$(CX) synth $(DEMO)/data --patients $(DEMO_PATIENTS) --seed $(DEMO_SEED) --image-size $(DEMO_IMAGE_SIZE)

$(DEMO)/index/manifest.json: $(DEMO)/data/synthetic_truth/generator.json
	$(CX) index $(DEMO)/data --out $(DEMO)/index

$(DEMO)/stats/stats.json: $(DEMO)/index/manifest.json
	$(CX) stats $(DEMO)/index --out $(DEMO)/stats

$(DEMO)/runs/%/checkpoint/training_metadata.json: $(DEMO)/index/manifest.json
	$(CX) train --config tiny --index $(DEMO)/index --out $(DEMO)/runs/$* --condition $* \
	  --max-steps $(DEMO_STEPS) --seed $(DEMO_SEED) \
	  $$(test -e $(DEMO)/runs/$*/deepspeed/latest && echo --resume)

$(DEMO)/eval/%/metrics.json: $(DEMO)/runs/%/checkpoint/training_metadata.json
	$(CX) evaluate $(DEMO)/runs/$*/checkpoint --split test --index $(DEMO)/index --out $(DEMO)/eval/$* \
	  --n-resamples $(DEMO_RESAMPLES) --seed $(DEMO_SEED)

$(DEMO)/compare/comparison.json: $(DEMO)/stats/stats.json $(foreach c,$(CONDITIONS),$(DEMO)/eval/$(c)/metrics.json)
	$(CX) compare $(DEMO)/eval/full $(foreach c,$(filter-out full,$(CONDITIONS)),$(DEMO)/eval/$(c)) \
	  --out $(DEMO)/compare --n-resamples $(DEMO_RESAMPLES) --seed $(DEMO_SEED)

.PRECIOUS: $(DEMO)/runs/%/checkpoint/training_metadata.json $(DEMO)/eval/%/metrics.json

clean-demo:
	rm -rf $(DEMO)
