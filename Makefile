# Set-up and checks. Everything CI needs is installed from here, into .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3

BENCH_STAMP := $(VENV)/.bench-installed

# The core's own venv: steploop and its test extra only, no TensorFlow nor JAX, so the core tests show
# they need none (tests/tf/, the TensorFlow doctests and the TensorFlow examples skip there).
CORE_VENV := .venv-core
CORE_PY := $(CORE_VENV)/bin/python
CORE_STAMP := $(CORE_VENV)/.installed

.PHONY: install demo test test-core lint bench callgrind gpu mutate clean

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# tensorflow-cpu for development (lighter); users install steploop[tensorflow]. JAX (CPU) and
	# optax come with the jax extra.
	$(PY) -m pip install --quiet "tensorflow-cpu>=2.16" -e ".[test,dev,jax]"
	# tf_keras (Keras 2 optimizers, which still have minimize) for the article-equivalence tests;
	# --no-deps, or it would pull the full tensorflow package on top of tensorflow-cpu.
	$(PY) -m pip install --quiet --no-deps "tf_keras>=2.16"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/minimize.py
	$(PY) examples/gradient_tape.py
	$(PY) examples/persistent_tape.py
	$(PY) examples/fused.py

test: $(STAMP)
	$(PY) -m pytest -q

# Built from nothing each time pyproject.toml or this file changes, so nothing left in it by hand
# (TensorFlow above all) can make the core run pass by accident.
$(CORE_STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	rm -rf $(CORE_VENV)
	$(PYTHON) -m venv $(CORE_VENV)
	$(CORE_PY) -m pip install --quiet --upgrade pip
	$(CORE_PY) -m pip install --quiet -e ".[test]"
	touch $(CORE_STAMP)

test-core: $(CORE_STAMP)
	@! $(CORE_PY) -c "import tensorflow" 2>/dev/null || { echo "$(CORE_VENV) has TensorFlow: the core run must go without it"; exit 1; }
	@! $(CORE_PY) -c "import jax" 2>/dev/null || { echo "$(CORE_VENV) has JAX: the core run must go without it"; exit 1; }
	$(CORE_PY) -m pytest -q

# Side-by-side timings (benchmarks/bench.py, bench_jax.py): prints the Markdown tables the README
# quotes, and writes benchmarks/results.json and the chart benchmarks/results.png.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/bench_jax.py

# The Trainer's overhead per step in instructions under valgrind's callgrind (stable on a noisy
# machine), against a bare Python loop: about a minute. Needs valgrind.
callgrind: $(STAMP)
	$(PY) benchmarks/callgrind.py

# Mutation testing of the framework-free core with the core tests (slow; not in CI): mutmut in
# the core venv (no framework installed, so only the core tests run). See docs/testing.md.
# Incremental: mutants/ is kept, and a new run tests only the mutants of functions changed since
# (and those never run); rm -rf mutants for a run from nothing. STEPLOOP_MUTATION=1 gives the
# tests the mutation profile (tests/conftest.py). tools/mutation_report.py prints the score.
mutate: $(CORE_STAMP)
	$(CORE_PY) -m pip install --quiet "mutmut==3.8.1"
	STEPLOOP_MUTATION=1 $(CORE_VENV)/bin/mutmut run
	$(CORE_PY) tools/mutation_report.py

# On a machine with a GPU and JAX (no TensorFlow needed): the bigger JAX MLP, then tests/jax.
gpu:
	python benchmarks/gpu.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples benchmarks tools
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) $(CORE_VENV) .pytest_cache .hypothesis
