# PainLens: `make demo` and `make test` do all the set-up on a fresh machine with Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean-demo

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "PainLens needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/painlens run experiments/demo.toml
	$(BIN)/painlens dashboard --artifacts artifacts/demo

# Every test (CI). test-fast: the edit-test loop, the tests not marked slow (README, Tests); a test not
# marked slow that takes more than FAST_CPU_LIMIT seconds of CPU fails there and says to mark it.
FAST_CPU_LIMIT ?= 10

# Two worker processes (pytest-xdist), each test file on one of them, for both targets: most tests wait
# on one core (a subprocess, a server, a browser), so two halve the wall time on a 2-core machine.
TEST_WORKERS ?= 2

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

test-fast: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile -m "not slow" --slow-after $(FAST_CPU_LIMIT)

bench: install
	$(BIN)/python bench/preprocess.py
	$(BIN)/python bench/train_throughput.py
