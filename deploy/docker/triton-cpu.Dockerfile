# Triton for machines without a GPU: NGC's Triton image plus the Python packages that the
# CPU model (`podium export --target cpu`) imports inside Triton's Python backend.
#
#   docker build -f deploy/docker/triton-cpu.Dockerfile -t podium-triton-cpu .
#
# That model is a Python-backend model.py running model.onnx in onnxruntime, the same one
# `podium up` serves with the Triton binary of the nvidia-pytriton wheel. The stock NGC
# image has the Python backend and numpy but not the onnxruntime Python package.
# Same NGC release as everywhere else (tests/deploy/test_images.py checks).

FROM nvcr.io/nvidia/tritonserver:25.06-py3
COPY constraints.txt /tmp/constraints.txt
# Versions come from constraints.txt, as in every other image; numpy stays at the 1.x
# that the project's own Triton Python backend is known to answer correctly with.
# PIP_BREAK_SYSTEM_PACKAGES: the Python backend stub runs the system interpreter, so the
# packages must go into its site-packages, which Ubuntu 24.04 marks externally managed.
RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir --disable-pip-version-check \
        --constraint /tmp/constraints.txt onnxruntime numpy \
    && rm /tmp/constraints.txt
# The stub allocates each batch's input and outputs: glibc keeps blocks up to 16 MB in its
# heap instead of mapping and faulting them in afresh each time (podium/core/allocator.py).
ENV MALLOC_MMAP_THRESHOLD_=16777216 \
    MALLOC_TRIM_THRESHOLD_=67108864
# NGC's Triton images carry the unprivileged user triton-server with uid 1000.
USER 1000:1000
