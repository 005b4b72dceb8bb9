"""TensorRT engines for GPU model versions, built on the serving GPU (``podium build-engine``).

Imports neither torch nor Redis: the engine-builder image runs it with TensorRT, the
model repository package and onnxruntime only. tensorrt and CUDA load inside functions.
"""

from podium.engine.build import EngineOutcome, EngineToolchain, build_engines, check_engine
from podium.engine.errors import EngineBuildError, NoGpu

__all__ = [
    "EngineBuildError",
    "EngineOutcome",
    "EngineToolchain",
    "NoGpu",
    "build",
    "build_engines",
    "check_engine",
    "cuda_runtime",
    "errors",
    "onnx2trt",
    "trt_runner",
]
