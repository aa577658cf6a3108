# Both targets create the virtual environment and install the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Offline machines of this project keep the archive beside the checkout; elsewhere scikit-learn
# downloads it. An explicit NEWSTOPIC_DATA always wins.
export NEWSTOPIC_DATA ?= $(wildcard ../shared/data/20news-bydate.tar.gz)

.PHONY: test benchmark results clean

# uv resolves the same versions as pip and installs them about five times faster
# (docs/development.md).
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $@

# The whole suite on TensorFlow, then the tests of the neural models again on JAX, less those
# that are the same on either: they start processes with a backend of their own, use no Keras,
# or test the orchestration around the models (benchmark, word2vec, resume, batch sizes,
# an ensemble's members and their held-out probabilities, when early stopping stops).
NEURAL_TESTS := tests/test_neural.py tests/test_seq2seq.py tests/test_ensemble.py \
	tests/test_explain.py tests/test_backends.py
SAME_ON_EITHER := data_parallel or tensorflow_unimportable or refused or automatic or tokenizer \
	or words_follow or under_the_other or on_the_other_backend or benchmark or word2vec \
	or batch_size_shrinks or resumes or resume_refuses or bad_neural_settings \
	or takes_trained_members or scores_its_validation_texts or early_stopping_restores

# Two pytest-xdist workers: many tests wait on processes, servers or Ray rather than on the
# CPU. --dist loadgroup keeps the tests of one shared module fixture on one worker
# (tests/conftest.py).
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist loadgroup

# lint-imports: the layers contract of pyproject.toml (an import going up the layers fails).
test: $(INSTALLED)
	$(BIN)/lint-imports --no-cache
	KERAS_BACKEND=tensorflow $(PYTEST)
	KERAS_BACKEND=jax $(PYTEST) $(NEURAL_TESTS) -k "not ($(SAME_ON_EITHER))"

benchmark: $(INSTALLED)
	$(BIN)/newstopic benchmark --out results/benchmark

# docs/results.md from the benchmark results committed under docs/results/
results: $(INSTALLED)
	$(BIN)/python -m newstopic.results docs/results docs/results.md

clean:
	rm -rf $(VENV) results .pytest_cache
