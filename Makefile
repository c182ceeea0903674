# Two entry points (README Quickstart): `make demo` and `make test`. Each creates .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# On this CPU-only build machine torch/torchvision resolve to local wheels (see README "Install"); on a GPU box
# override TORCH_SPEC, e.g. `make demo TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv demo test test-fast check style bench clean

$(BIN)/retinalogos: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[test,dev]"
	touch $@

venv: $(BIN)/retinalogos

demo: venv
	$(BIN)/retinalogos demo --workdir $${WORKDIR:-demo-run}

# The full suite: also sets up the optional engines its tests drive for real (vLLM CPU server, headless Chromium).
test: venv
	bash scripts/setup_test_extras.sh
	$(BIN)/python -m pytest -q

# Under 3 minutes: everything but the end-to-end runs (`slow`) and the engines the full suite sets up.
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not vllm and not gpu"

# Lint, format and types, as CI runs them (`make style` applies the fixes).
check: venv
	$(BIN)/ruff check retinalogos_hub tests benchmarks
	$(BIN)/ruff format --check retinalogos_hub tests benchmarks
	$(BIN)/mypy

style: venv
	$(BIN)/ruff check --fix retinalogos_hub tests benchmarks
	$(BIN)/ruff format retinalogos_hub tests benchmarks

# Each benchmark runs ours against its baseline side by side on the same inputs and prints the ratios.
bench: venv
	$(BIN)/python benchmarks/curate_throughput.py
	$(BIN)/python benchmarks/caption_throughput.py
	$(BIN)/python benchmarks/push_dataset.py
	$(BIN)/python benchmarks/fid_features.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/text_cache.py

clean:
	rm -rf $(VENV) .venv-vllm demo-run
