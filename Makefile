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

# The whole suite on TensorFlow, then the tests of the neural models again on JAX (less the
# backend tests that start their own processes or use no Keras: the same on either).
NEURAL_TESTS := tests/test_neural.py tests/test_seq2seq.py tests/test_ensemble.py \
	tests/test_explain.py tests/test_backends.py
OWN_PROCESS_TESTS := data_parallel or tensorflow_unimportable or refused or automatic or tokenizer \
	or words_follow

test: $(INSTALLED)
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest -q
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q $(NEURAL_TESTS) -k "not ($(OWN_PROCESS_TESTS))"

benchmark: $(INSTALLED)
	$(BIN)/newstopic benchmark --out results/benchmark

clean:
	rm -rf $(VENV) results .pytest_cache
