# Two entry points for a newcomer: `make demo` (set up + run the main job) and `make test` (set up + run the tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint clean

$(BIN)/ladtalk: pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first and pinned, so pip takes the local CPU build instead of the registry's CUDA one
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q torch
	$(BIN)/pip install -q -e ".[dev,logging,serve,browser-tests,fast]"
	# wheels that carry offline weights; read as data files only (their declared deps pin old torch/torchvision)
	$(BIN)/pip install -q --no-deps facenet-pytorch==2.6.0 stlpips-pytorch==0.0.2 lpips==0.1.4
	touch $(BIN)/ladtalk

setup: $(BIN)/ladtalk

demo: setup
	$(BIN)/ladtalk demo -o demo_out

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_out

# The GPU machine (device tool) has no network: carry the wheels it lacks and the Macron clip (bench/README.md).
WHEEL_PLATFORMS := $(foreach p,manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64,--platform $(p))
.PHONY: gpu-wheels gpu-carry

gpu-wheels:
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(WHEEL_PLATFORMS) -d .whl -r bench/gpu_wheels.txt

gpu-carry: gpu-wheels
	mkdir -p .gpu && cp -u ../shared/data/video/macron_50s_dfrf.mp4 .gpu/
	$(PY) bench/gpu_carry_check.py .whl .gpu
