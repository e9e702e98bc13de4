# Two entry points (see README): `make report` runs the main job, `make test` runs the tests.
# Both create .venv on first use. torch is pinned: `torch==2.13.0` takes the CPU wheel on the
# benchmark machines; an unpinned `torch` would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup report test bench clean notebooks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

setup: $(STAMP)

report: $(STAMP)
	$(BIN)/daedalus run

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pytest bench/ --benchmark-only

notebooks: $(STAMP)
	$(BIN)/python notebooks/build.py --execute results/notebooks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
