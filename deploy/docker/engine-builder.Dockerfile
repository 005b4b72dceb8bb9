# The engine builder: turns the exported ONNX model into a TensorRT plan on the GPU that
# will serve it, at deploy time.
#
#   docker build -f deploy/docker/engine-builder.Dockerfile -t podium-engine-builder .
#
# A plan only runs with the TensorRT version (and GPU model) that built it, so this image
# is NGC's TensorRT image of the SAME release as the Triton image that loads the plan:
# nvcr.io/nvidia/tritonserver:25.06-py3 in docker-compose.yml and k8s/. Change both
# together (tests/deploy/test_images.py fails if they differ). 25.xx images are
# Ubuntu 24.04 with Python 3.12, which Podium (Python >= 3.11) installs into.

# --- build: install Podium's export pieces, without torch, into one folder -------------
FROM nvcr.io/nvidia/tensorrt:25.06-py3 AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY deploy/docker/engine_requirements.py deploy/docker/engine_requirements.py
COPY podium/ podium/
COPY gateway/ gateway/
COPY worker/ worker/
COPY export/ export/
# cuda-python gives the engine check its device memory (podium/engine/cuda_runtime.py). It must
# match this release's CUDA (25.06: CUDA 12.9): the cuda-bindings 13.x that constraints.txt
# pins for the host's CUDA 13 PyTorch would need a newer driver than the release does, so
# those pins are left out here.
ARG CUDA_PYTHON="cuda-python==12.9.*"
# --target keeps the image's own Python packages (the TensorRT bindings among them)
# untouched and sidesteps Ubuntu's "externally managed" pip guard without overriding it.
RUN python3 deploy/docker/engine_requirements.py pyproject.toml > /tmp/engine-requirements.txt \
    && grep -v '^cuda-' constraints.txt > /tmp/constraints.txt \
    && python3 -m pip install --no-cache-dir --disable-pip-version-check \
        --target /opt/podium/lib --constraint /tmp/constraints.txt \
        --requirement /tmp/engine-requirements.txt "$CUDA_PYTHON" .

# --- runtime: the same NGC image plus that folder, as a non-root user -------------------
FROM nvcr.io/nvidia/tensorrt:25.06-py3
COPY --from=build /opt/podium/lib /opt/podium/lib
# HOME=/tmp: the container may run under any uid (docker-compose.yml runs it as the
# owner of the bind-mounted model repository) and CUDA writes its JIT cache under HOME.
ENV PYTHONPATH=/opt/podium/lib \
    PATH=/opt/podium/lib/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# /cache: PODIUM_ENGINE_CACHE_DIR, where built engines and timing caches outlive the
# container (a volume in docker-compose.yml and k8s). Sticky and world-writable, because
# compose runs the builder as the host user and a fresh named volume copies this mode.
RUN useradd --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin podium \
    && mkdir -m 1777 /cache
WORKDIR /tmp
USER 10001:10001
# docker-compose.yml and k8s/ pass the command explicitly (docs/deploy.md, "The engine
# builder"); tests/deploy/test_images.py checks that its code imports no torch.
CMD ["podium", "build-engine", "--model-repository", "/models", "--model-name", "resnet50_sports"]
