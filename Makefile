# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_WARN_SCRIPT_LOCATION := 1
# pip's and setuptools' deprecation notices while installing are not the user's business (-qq
# still prints errors, and a failed install stops make).
QUIET_PIP := PYTHONWARNINGS=ignore $(PY) -m pip install -qq
IMPORTS := import regionx, libcst, keras, distributed, numba, pytest, mypy, scipy, mapie

.PHONY: demo test venv bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(QUIET_PIP) --upgrade pip
	$(QUIET_PIP) -e '.[train,dask,bench,dev,scipy]'
	@# the import check: silent when it works (TensorFlow's start-up logs go to stderr), the error when not
	@$(PY) -c '$(IMPORTS)' 2>/dev/null || $(PY) -c '$(IMPORTS)'
	touch $(STAMP)

# The demo: compile the Newton-Raphson fixture end to end (analyze, extract, sample, time the
# candidate networks, train the fastest first, rewrite) with compile's defaults, then run the
# exact and the patched program and show them side by side: speedup and results within tolerance.
DEMO_OUT   := .regionx-demo
DEMO_FLAGS ?=

demo: $(STAMP)
	$(VENV)/bin/regionx analyze fixtures/newton.py
	$(VENV)/bin/regionx compile fixtures/newton.py --out $(DEMO_OUT) $(DEMO_FLAGS)
	@$(PY) benchmarks/side_by_side.py fixtures/newton.py $(DEMO_OUT)/newton.py --artifact $(DEMO_OUT)/newton

# Every figure the README quotes, from scratch (training what it needs; about 3 hours on 2
# cores, not part of `make test`). Each script writes benchmarks/results/<name>.{md,json}, with
# the machine it ran on (CPU model and SIMD flags, numpy, BLAS and thread settings). The order
# matters: speedup.py reuses the surrogates paper_tables.py and accuracy_ceiling.py trained.
BENCH := paper_tables accuracy_ceiling speedup criterion_floor compile_defaults optimizers guard ik_ceiling \
         showcase sampling batch_loops batch_path

bench: $(STAMP)
	@for script in $(BENCH); do \
	  echo "=== benchmarks/$$script.py"; \
	  $(PY) benchmarks/$$script.py || exit 1; \
	done
	@echo "=== benchmarks/sampling.py --only designs --fine"
	@$(PY) benchmarks/sampling.py --only designs --fine

test: $(STAMP)
	$(PY) -m mypy regionx benchmarks/*.py
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .regionx $(DEMO_OUT) build *.egg-info
