# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export TF_CPP_MIN_LOG_LEVEL := 3
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test venv bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,dask,bench,dev]' 2>&1 | grep -v -e '^WARNING: Location' || true
	$(PY) -c 'import regionx, libcst, keras, distributed, numba, pytest, mypy'
	touch $(STAMP)

# The demo: compile the Newton-Raphson fixture end to end (analyze, extract, sample, train,
# rewrite), then run the exact and the patched program side by side.
DEMO_OUT   := .regionx-demo
DEMO_FLAGS ?= --samples 30000 --epochs 60 --topologies "5,3;32,32;64,64"

demo: $(STAMP)
	$(VENV)/bin/regionx analyze fixtures/newton.py
	$(VENV)/bin/regionx compile fixtures/newton.py --out $(DEMO_OUT) $(DEMO_FLAGS)
	@echo "--- exact program:   python fixtures/newton.py"
	@$(PY) fixtures/newton.py
	@echo "--- patched program: python $(DEMO_OUT)/newton.py"
	@$(PY) $(DEMO_OUT)/newton.py

test: $(STAMP)
	$(PY) -m mypy regionx benchmarks/*.py
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .regionx $(DEMO_OUT) build *.egg-info
