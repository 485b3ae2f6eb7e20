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
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-fast: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow"

# The main job on the synthetic default, each step resumable (a rerun skips finished steps):
# generate -> index -> distribution stats, and the ablation study (`cxrbench ablate`: train the
# six conditions, tiny config, DEMO_STEPS optimizer steps each, DEMO_JOBS steps at a time, each a
# one-thread process -> evaluate each on the test split -> compare with `full` -> seed spread,
# expected matrix, dynamics) -> error analysis of `full` against `no_scene_graph` (`cxrbench errors`).
DEMO_STEPS ?= 1500
DEMO_RESAMPLES ?= 1000
DEMO_IMAGE_SIZE ?= 160
DEMO_JOBS ?= 2

demo: venv
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(MAKE) $(DEMO)/errors/summary.json
	$(MAKE) book BOOK_INPUTS=$(DEMO)
	@echo "demo done: $(DEMO)/stats, $(DEMO)/study/study.md (runs/, eval/, compare/, expected_matrix.md), $(DEMO)/errors/errors.md, book/_build/html/index.html"

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

# after the stats: the study runs DEMO_JOBS processes itself; a killed study continues where it
# stopped (study.json records every step)
$(DEMO)/study/study.md: $(DEMO)/stats/stats.json
	$(CX) ablate --config tiny --index $(DEMO)/index --out $(DEMO)/study --seeds $(DEMO_SEED) \
	  --max-steps $(DEMO_STEPS) --n-resamples $(DEMO_RESAMPLES) --bootstrap-seed $(DEMO_SEED) --jobs $(DEMO_JOBS)

$(DEMO)/errors/summary.json: $(DEMO)/study/study.md
	$(CX) errors $(DEMO)/study/eval/full/seed$(DEMO_SEED) --baseline $(DEMO)/study/eval/no_scene_graph/seed$(DEMO_SEED) \
	  --index $(DEMO)/index --data $(DEMO)/data --out $(DEMO)/errors --n-resamples $(DEMO_RESAMPLES) --seed $(DEMO_SEED)

clean-demo:
	rm -rf $(DEMO)
