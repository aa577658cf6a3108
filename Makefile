# Both targets create the virtual environment and install the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Offline machines of this project keep the archive beside the checkout; elsewhere scikit-learn
# downloads it. An explicit NEWSTOPIC_DATA always wins.
export NEWSTOPIC_DATA ?= $(wildcard ../shared/data/20news-bydate.tar.gz)

.PHONY: test benchmark clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

benchmark: $(INSTALLED)
	$(BIN)/newstopic benchmark --out results/benchmark

clean:
	rm -rf $(VENV) results .pytest_cache
