# Two set-up commands work on a fresh machine: `make demo` and `make test`.
# Both create .venv if it is missing and install (torch first, the `TORCH` pin, from pip's configured index:
# on Linux PyPI's wheel is the CUDA build; for the CPU one run e.g.
# `PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu TORCH=torch==2.13.0+cpu make demo`);
# re-running installs nothing when pyproject.toml has not changed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lightning_causal-installed
TORCH  ?= torch==2.13.0
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint docs bench clean screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,examples]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) examples/demo_digits.py --logdir runs/digits
	$(PY) examples/backdoor_digits.py --logdir runs/backdoor

# The docs build runs without --quiet: --quiet drops WARNING records before --strict counts them.
test: setup
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)
	$(VENV)/bin/mkdocs build --strict --site-dir site

lint: setup
	$(VENV)/bin/ruff check lightning_causal tests examples benchmarks scripts

docs: setup
	$(VENV)/bin/mkdocs build --strict --site-dir site

# TensorBoard on the demo and recipe runs (made when missing), screenshots of each view with headless
# Chromium (Debian's package, installed with apt-get when missing) into docs/img/.
screenshots: setup
	$(PY) scripts/screenshots.py

bench: setup
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_callback.py
	$(PY) benchmarks/bench_drawing.py
	$(PY) benchmarks/bench_captum.py
	$(PY) benchmarks/bench_sobol.py
	$(PY) benchmarks/bench_graph.py
	$(PY) benchmarks/bench_repair.py
	$(PY) benchmarks/bench_backdoor.py
	$(PY) benchmarks/bench_text.py
	$(PY) benchmarks/bench_graph_captum.py
	$(PY) benchmarks/bench_prefix.py
	$(PY) benchmarks/bench_screen.py
	$(PY) benchmarks/bench_ddp.py
	$(PY) benchmarks/bench_ranking.py
	$(PY) benchmarks/bench_topk_overlap.py
	$(PY) benchmarks/bench_region_search.py
	$(PY) benchmarks/bench_backdoor_rgb.py

clean:
	rm -rf site runs lightning_logs .pytest_cache
