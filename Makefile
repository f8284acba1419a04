# make demo: the main job (train on an embedded dataset, write a run folder with plots)
# make test: the test suite; make bench: the benchmarks against their peers (the `bench` extra: PyTorch,
# JAX + Optax, scikit-learn). Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
BENCH  := $(VENV)/.bench-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/descend train

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2

$(BENCH): $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	rm -f $(VENV)/.bench-*
	touch $(BENCH)

bench: $(BENCH)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b; done

clean:
	rm -rf $(VENV) runs .pytest_cache
