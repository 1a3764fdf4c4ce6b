# Two set-up commands for a fresh machine (see README.md):
#   make demo   install zoolens into .venv and serve the dashboard on the built-in demo data
#   make test   install zoolens with its test extras (and Chromium, PostgreSQL) and run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5006

.PHONY: install demo test system-packages

$(BIN)/zoolens: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@echo "Compiling the point method's kernels once for this machine (about 30 s; cached on disk)"
	$(BIN)/python -c "from consensus import point_kernels; point_kernels.load()"
	touch $@

install: $(BIN)/zoolens

demo: install
	$(BIN)/zoolens demo --port $(PORT)

system-packages:
	sh scripts/install-system-packages.sh

# Two worker processes (pytest-xdist), one test file each at a time so a file's served app, browser and
# cluster fixtures are made once: 8.5 min instead of 15 on two cores (one where the machine has one).
test: install system-packages
	$(BIN)/python -m pytest -n auto --maxprocesses 2 --dist loadfile
