# Podium — every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.podium-installed
CHECKPOINT ?=
DEMO_DIR ?= .podium/demo
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup system-deps demo figures screenshots test unit component integration deploy bench gpu-check proto lint clean

setup: system-deps $(STAMP)

# redis-server, the libpython that Triton's Python-backend stub links against, the
# browser the web page's tests drive (Debian's chromium and its chromedriver), and qemu's
# user-mode emulator, which checks INT8 models on AVX2's kernels on a VNNI machine.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	ldconfig -p | grep -q 'libpython3\.11\.so\.1\.0' || missing="$$missing libpython3.11"; \
	[ "$$(uname -m)" != x86_64 ] || command -v qemu-x86_64 >/dev/null || missing="$$missing qemu-user"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all]'
	touch $@

demo: setup
	$(BIN)/podium demo --dir $(DEMO_DIR) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),)

# The README's pictures, regenerated from real runs: the demo's heat-map sheet.
figures: demo
	mkdir -p docs/images && cp $(DEMO_DIR)/heatmaps.png docs/images/heatmaps.png

# The web page's screenshots in the README, taken by its browser test (tests/integration/test_web.py).
screenshots: setup
	rm -rf docs/images/web
	PODIUM_SCREENSHOTS_DIR=docs/images/web $(BIN)/python -m pytest tests/integration/test_web.py $(PYTEST_ARGS)

# Lint first (seconds), then every tier: unit, component, integration, deploy (docs/architecture.md).
test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The GPU path on a GPU machine (podium/cli/operator/gpu_check.py): export, engine build and its FP16 gate,
# engine speed, Triton end to end when its TensorRT backend is here. Without a GPU it says so
# and exits 0. The engine steps run in .venv-gpu, built like the engine-builder image:
# the project without PyTorch, TensorRT pinned to Triton 25.06's, CUDA 12.9 bindings.
GPU_CHECK_DIR ?= .podium/gpu-check
TENSORRT_VERSION = $(shell sed -n 's/^TENSORRT_VERSION = "\(.*\)"/\1/p' podium/stores/modelrepo/settings.py)
gpu-check: setup
	@if nvidia-smi -L >/dev/null 2>&1; then \
	  test -x .venv-gpu/bin/python || python3 -m venv .venv-gpu; \
	  .venv-gpu/bin/python -m pip install -q --upgrade pip; \
	  .venv-gpu/bin/python -m pip install -q -e . $$($(BIN)/python deploy/docker/engine_requirements.py pyproject.toml) \
	    "tensorrt-cu12==$(TENSORRT_VERSION)" "cuda-bindings==12.9.*"; \
	fi
	$(BIN)/python -m podium.cli.operator.gpu_check --engine-python .venv-gpu/bin/python $(GPU_CHECK_DIR)

# Throughput, latency and fairness side by side (~10-15 min on 2 cores); not part of `make test`.
# BENCH_ARGS passes options through, e.g. BENCH_ARGS="--quick" or "--workers 3 --inflight 8".
bench: setup
	$(BIN)/python -m podium bench $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),) $(BENCH_ARGS)

# No process at all: fakes stand in for Redis, Triton, Celery and TensorRT.
unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# One real part at a time: redis-server, the gateway in-process, real torch exports.
component: setup
	$(BIN)/python -m pytest tests/component $(PYTEST_ARGS)

# The whole cluster with real processes (tritonserver, redis-server, Celery, gateway, CLI).
integration: setup
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# Static checks of docker-compose.yml, k8s/ and the Dockerfiles.
deploy: setup
	$(BIN)/python -m pytest tests/deploy $(PYTEST_ARGS)

proto: setup
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. podium/core/proto/podium.proto

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf .podium .pytest_cache build *.egg-info
