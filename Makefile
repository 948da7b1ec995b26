# nervenet's set-up commands. Quick start:
#
#     make demo    # create .venv, install nervenet, train a CNN on the embedded MNIST subset
#     make test    # create .venv, install nervenet[test], run ruff and the whole test suite
#
# Both targets are idempotent: .venv is created once, and nervenet is reinstalled (editable)
# only when pyproject.toml changes. Use another interpreter with `make PYTHON=python3.12 test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help demo test lint clean

help:
	@echo "make demo   create $(VENV), install nervenet and train a CNN on the embedded MNIST"
	@echo "make test   create $(VENV), install nervenet[test], run ruff, the tests and doctests"
	@echo "make lint   ruff only"
	@echo "make clean  remove $(VENV) and caches"

# The virtual environment. `make .venv` makes sure it exists (.ci/run uses it).
$(BIN)/python:
	@$(PYTHON) -c 'import sys; v = sys.version.split()[0]; sys.exit(sys.version_info < (3, 11) \
		and f"nervenet needs Python >= 3.11, but $(PYTHON) is {v}: try make PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)

$(VENV): $(BIN)/python

# Stamp files remember what was installed; they are older than pyproject.toml after an edit,
# which reinstalls. `pip install -e` keeps packages installed by hand (torch in CI).
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[plot,tensorboard]'
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

# The main job on the embedded MNIST subset (no download): a small CNN, its test accuracy, and
# the model, history CSV, plots and TensorBoard logs in a new runs/demo/version_N per run.
demo: $(VENV)/.installed-demo
	$(BIN)/python -m nervenet train --dataset mnist5k --model cnn --epochs 8 --verbose 2 \
		--out runs --name demo

LINT := $(BIN)/ruff check nervenet tests examples

lint: $(VENV)/.installed-test
	$(LINT)

# ruff, then every test in tests/ and every doctest in nervenet/ (testpaths and
# --doctest-modules are set in pyproject.toml). pytest runs even when ruff complains, so that
# one run reports both; the target fails if either failed.
test: $(VENV)/.installed-test
	@echo "$(LINT)"; lint=0; $(LINT) || lint=$$?; \
	echo "$(BIN)/python -m pytest"; $(BIN)/python -m pytest; tests=$$?; \
	if [ $$lint -ne 0 ]; then echo "make test: ruff check failed (see above)" >&2; fi; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; exit $$lint

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
