"""The little of the CUDA runtime the engine build needs, through cuda-python (cuda.bindings).

cuda-python is TensorRT's own companion for device memory in Python, so the engine-builder
image (NGC's TensorRT image, without PyTorch) needs nothing heavier. Imported lazily.
"""

from __future__ import annotations

from types import ModuleType

from podium.engine.errors import EngineBuildError, NoGpu

NO_GPU_HINT = (
    "build the engine on the target GPU, e.g. with the compose engine-builder service "
    "(an image with the TensorRT of the Triton image's NGC release)"
)


def cudart() -> ModuleType:
    """cuda-python's runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError:
            raise NoGpu(
                f"no CUDA GPU / TensorRT not installed here (no cuda-python for device access): {NO_GPU_HINT}"
            ) from None
    return runtime


def check(result: tuple, what: str):
    """Unwrap a cuda-python call's (error, value...) tuple; EngineBuildError on a CUDA error."""
    runtime = cudart()
    error, *values = result
    if error != runtime.cudaError_t.cudaSuccess:
        raise EngineBuildError(f"CUDA {what} failed: {getattr(error, 'name', error)}; {NO_GPU_HINT}")
    return values[0] if len(values) == 1 else tuple(values) or None


def first_gpu() -> tuple[str, str]:
    """(name, compute capability "major.minor") of CUDA device 0; NoGpu without one."""
    runtime = cudart()
    error, count = runtime.cudaGetDeviceCount()
    if error != runtime.cudaError_t.cudaSuccess or not count:
        reason = getattr(error, "name", error) if error != runtime.cudaError_t.cudaSuccess else "0 devices"
        raise NoGpu(f"no CUDA GPU / TensorRT not installed: CUDA finds no device ({reason}); {NO_GPU_HINT}")
    properties = check(runtime.cudaGetDeviceProperties(0), "device query")
    name = (
        properties.name.decode(errors="replace").rstrip("\x00")
        if isinstance(properties.name, bytes)
        else str(properties.name)
    )
    return name, f"{properties.major}.{properties.minor}"
