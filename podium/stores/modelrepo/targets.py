"""Export targets: how a verified ONNX model is served, one entry per ``--target``.

A target names the Triton backend or platform, where its instances run, how Triton batches
for it, the files that go into the version folder beside the model and the config
parameters they read. The workers and the gateway never look at it: every target takes
uint8 NHWC ``images`` and answers float32 ``probabilities`` (gpu-dali adds an ensemble that
takes encoded files; its metadata says so, and that is what workers read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from podium.core.errors import InvalidArgument
from podium.stores.modelrepo.layout import PYTHON_MODEL_FILENAME

CPU = "cpu"
CPU_INT8 = "cpu-int8"
GPU = "gpu"
CPU_ORT = "cpu-ort"
GPU_ORT = "gpu-ort"
GPU_DALI = "gpu-dali"
TARGETS = (CPU, CPU_INT8, GPU, CPU_ORT, GPU_ORT, GPU_DALI)
# Read by triton_python_model.py (which cannot import this package inside Triton).
ONNX_THREADS_PARAMETER = "onnx_intra_op_threads"
# 0 lets onnxruntime pick (one thread per physical core).
DEFAULT_ONNX_THREADS = 0
# onnxruntime's idle intra-op threads busy-wait for the next operator by default. Beside the
# workers on one machine that burns the cores they decode on: measured (docs/performance.md
# section 0a), spinning off cut tritonserver's CPU per image ~4.5x on the stand-in model and
# made ResNet50 end to end faster, not slower. "1" for a machine that runs Triton alone.
ONNX_SPINNING_PARAMETER = "onnx_allow_spinning"
DEFAULT_ONNX_SPINNING = "0"
_PYTHON_MODEL_PARAMETERS = {
    ONNX_THREADS_PARAMETER: str(DEFAULT_ONNX_THREADS),
    ONNX_SPINNING_PARAMETER: DEFAULT_ONNX_SPINNING,
}
PYTHON_MODEL_SOURCE = Path(__file__).with_name("triton_python_model.py")

ORT_TRT_CACHE_PATH = "/tmp/podium-ort-tensorrt-cache"  # inside the Triton container

PYTHON_BACKEND = "python"
TENSORRT_PLATFORM = "tensorrt_plan"
ONNXRUNTIME_PLATFORM = "onnxruntime_onnx"

_KIND_CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU
_KIND_GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU


@dataclass(frozen=True)
class Batching:
    """Triton's dynamic batcher settings for one target: a queue delay traded against latency,
    and no preferred batch sizes. Triton's guidance (user guide, "Dynamic Batcher") keeps
    those for a model where one size is much faster; and with them the batcher of the Triton
    we run (2.51) strands a request in its queue for its 500 ms idle wait: a new request
    wakes it only once the queue reaches the next preferred size, and 16-image requests
    against 8/16/32 stalled ~1 request in 250 that way (docs/performance.md, 00i).
    """

    max_queue_delay_microseconds: int
    # Overload is answered, not timed out: past this many queued requests, or after this
    # long in the queue, Triton rejects a request (UNAVAILABLE), and the worker backs off.
    max_queue_size: int = 64
    queue_timeout_microseconds: int = 20_000_000


@dataclass(frozen=True)
class Target:
    """How one kind of deployment serves the exported model."""

    name: str
    instance_kind: int  # a model_config_pb2.ModelInstanceGroup.Kind value
    backend: str = ""  # exactly one of backend and platform is set
    platform: str = ""
    instance_count: int = 1
    precision: str = "fp32"
    # None: no dynamic batcher, requests go straight to the instance. The CPU targets: a
    # worker sends whole batches itself, and Triton's batcher thread misses the wake-up of a
    # freed instance (its condition variable is notified without the waiter's mutex), so a
    # request queued behind a busy instance waited out the batcher's 500 ms idle wait
    # (docs/performance.md, 00k).
    batching: Batching | None = None
    default_max_batch_size: int = 32
    # Warm-up requests (batch sizes; "max" stands for max_batch_size) run before "ready".
    warmup_batch_sizes: tuple[int | str, ...] = ()
    # Version-folder file name -> source file copied there (besides the ONNX model).
    extra_files: Mapping[str, Path] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    # ONNX Runtime backend only: TensorRT execution accelerator parameters.
    tensorrt_accelerator: Mapping[str, str] = field(default_factory=dict)
    # The version needs a TensorRT engine built on the serving GPU before Triton loads it.
    needs_engine: bool = False
    # Also write the DALI decoding model and the ensemble that takes encoded files (gpu-dali).
    decodes_on_gpu: bool = False

    @property
    def serves_with(self) -> str:
        return self.backend or self.platform

    @property
    def returns_fingerprint(self) -> bool:
        """Podium's own model.py answers with the fingerprint of the pixels it classified."""
        return self.backend == PYTHON_BACKEND


# CPU: no dynamic batcher (see Target.batching); each worker process keeps its few
# requests in flight, so the instance's queue stays as short as the workers make it.
CPU_TARGET = Target(
    name=CPU,
    backend=PYTHON_BACKEND,  # the pytriton wheel's Triton has the Python backend only
    instance_kind=_KIND_CPU,
    extra_files={PYTHON_MODEL_FILENAME: PYTHON_MODEL_SOURCE},
    parameters=_PYTHON_MODEL_PARAMETERS,
)
# Same Python-backend model.py: it runs whichever ONNX file the version holds.
CPU_INT8_TARGET = Target(
    name=CPU_INT8,
    backend=PYTHON_BACKEND,
    instance_kind=_KIND_CPU,
    precision="int8",
    extra_files={PYTHON_MODEL_FILENAME: PYTHON_MODEL_SOURCE},
    parameters=_PYTHON_MODEL_PARAMETERS,
)
# One FP16 ResNet50 batch of 64 takes a few ms on a data-centre GPU: half a millisecond of
# delay lets single-image requests from many workers fill it without adding visible
# latency. No preferred sizes: a single optimisation profile has no favoured size.
GPU_BATCHING = Batching(500, max_queue_size=1024, queue_timeout_microseconds=5_000_000)
GPU_TARGET = Target(
    name=GPU,
    platform=TENSORRT_PLATFORM,
    instance_kind=_KIND_GPU,
    instance_count=2,  # one instance copies while the other computes
    precision="fp16",
    batching=GPU_BATCHING,
    default_max_batch_size=64,
    warmup_batch_sizes=(1, "max"),
    needs_engine=True,
)
# For NGC Triton images (they carry the ONNX Runtime backend; the embedded one does not).
CPU_ORT_TARGET = Target(
    name=CPU_ORT,
    platform=ONNXRUNTIME_PLATFORM,
    instance_kind=_KIND_CPU,
    parameters={"intra_op_thread_count": str(DEFAULT_ONNX_THREADS)},
)
GPU_ORT_TARGET = Target(
    name=GPU_ORT,
    platform=ONNXRUNTIME_PLATFORM,
    instance_kind=_KIND_GPU,
    instance_count=2,
    precision="fp16",
    batching=GPU_BATCHING,
    default_max_batch_size=64,
    warmup_batch_sizes=(1, "max"),  # ORT builds its TensorRT engines on first use: do it before "ready"
    tensorrt_accelerator={
        "precision_mode": "FP16",
        "max_workspace_size_bytes": str(4 << 30),
        # Without a cache ORT rebuilds the engines at every load (minutes); mount a volume here.
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": ORT_TRT_CACHE_PATH,
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": ORT_TRT_CACHE_PATH,
    },
)
# The gpu model as it is, plus JPEG decoding on the GPU in front of it (podium.stores.modelrepo.gpu_decode):
# workers send the files' bytes to the ensemble and decode nothing.
GPU_DALI_TARGET = replace(GPU_TARGET, name=GPU_DALI, decodes_on_gpu=True)
_BY_NAME = {
    t.name: t for t in (CPU_TARGET, CPU_INT8_TARGET, GPU_TARGET, CPU_ORT_TARGET, GPU_ORT_TARGET, GPU_DALI_TARGET)
}


def resolve_target(name: str) -> Target:
    """The Target called ``name``; InvalidArgument for an unknown one."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise InvalidArgument(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
