# diffusion-lite: every set-up step lives here, so a fresh clone needs only Python >= 3.10 and make.
#   make test   create/refresh .venv from the pins, then run unit tests + nbval over every notebook
#   make book   create/refresh .venv, fetch offline web assets, build the site (executes notebooks)
#   make lab    open JupyterLab on the course (make lab LAB_DIR=student/notebooks LAB_ARGS=--no-browser),
#               with the course's settings (no news prompt) and its environment as the kernel
#   make student  write student copies (solutions removed) to student/; a copy you edited is kept
#               (make student FORCE=1 replaces it, saving yours as .bak)
#   make cache  train every model the course loads, once (Binder, a class's shared cache, CI)
#   make bench  time every notebook in a fresh kernel; table -> benchmarks/notebooks.md and README
#               (make bench BENCH_ARGS="--only 01 --timeout 300")

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The stamp is named after pyproject.toml's checksum: edit the pins and the next run reinstalls;
# change nothing and nothing is reinstalled.
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_WORKERS ?= 2
BENCH_ARGS ?=
LAB_ARGS ?=
LAB_DIR ?= notebooks
# (as root, e.g. in a container, Jupyter refuses to start without --allow-root; added then)
# pip >= 21.3 installs a pyproject-only package in editable mode (PEP 660); older pips cannot.
PIP_MIN := 21.3
# Where torch comes from: empty = pip's configured indexes (here a local CPU wheel). On a machine
# without that wheel, TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu keeps torch CPU-only.
TORCH_INDEX_URL ?=
CACHE_JOBS ?= 2

.PHONY: venv test book lab student bench cache web-assets clean distclean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "diffusion-lite needs Python >= 3.10; set PYTHON=/path/to/python3.x")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV)." \
		"On Debian/Ubuntu: sudo apt install python3-venv (or set PYTHON=...)"; rm -rf $(VENV); exit 1; }
	@rm -f $(VENV)/.installed-*
	@$(BIN)/python -c 'import pip, sys; v = tuple(int(p) for p in pip.__version__.split(".")[:2]); \
		sys.exit(v < tuple(int(p) for p in "$(PIP_MIN)".split(".")))' \
	|| $(BIN)/python -m pip install --disable-pip-version-check -q "pip>=$(PIP_MIN)"
	# torch first and exactly pinned: a looser request pulls several GB of CUDA wheels.
	$(BIN)/python -m pip install --disable-pip-version-check -q "torch==2.13.0" \
		$(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev]"
	@touch $@

# Two pytest workers share the two cores: one thread each, or torch oversubscribes and small
# tensor ops slow down forty-fold (measured on chapter 2's mixture scores).
# First the warm-up trains every model the notebooks load (nothing when the cache is warm); the
# notebooks then run with DIFFUSION_LITE_NO_TRAIN=1, so one that would train fails: after
# `make cache`, running the course trains nothing.
test: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m diffusion_lite.warmup --jobs $(CACHE_JOBS)
	DIFFUSION_LITE_NO_TRAIN=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 -p no:cacheprovider

web-assets: $(STAMP)
	@bash scripts/fetch_web_assets.sh

book: $(STAMP) web-assets
	$(BIN)/jupyter-book build . --config book/_config.yml --toc book/_toc.yml -W -n --keep-going

# The course's JupyterLab settings (no "get notified about Jupyter news?" prompt) live in
# lab/overrides.json and are copied where JupyterLab reads overrides in this environment; the
# kernel "python3" is re-registered with this environment's absolute python, and .venv/bin goes
# first on PATH, so notebooks run here whatever other Pythons or kernels the machine has.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
lab: $(STAMP)
	@mkdir -p $(LAB_SETTINGS) && cp lab/overrides.json $(LAB_SETTINGS)/overrides.json
	@$(BIN)/python -m ipykernel install --sys-prefix --name python3 \
		--display-name "Python 3 (diffusion-lite)" > /dev/null
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) $(LAB_DIR)

# FORCE=1 overwrites student copies a learner has edited (each saved as .bak first).
student: $(STAMP)
	$(BIN)/python scripts/make_student.py notebooks student $(if $(filter 1 yes true,$(FORCE)),--force)

# Trains what is missing from the model cache ($$DIFFUSION_LITE_CACHE or ~/.cache/diffusion-lite);
# with everything cached it only verifies the files.
cache: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m diffusion_lite.warmup --jobs $(CACHE_JOBS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_notebooks.py $(BENCH_ARGS)

# Neither clean nor distclean touches student/: it holds the learners' own work.
clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV) book/_static/vendor
