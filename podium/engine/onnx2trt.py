"""ONNX model -> serialised TensorRT engine (plan), with the TensorRT Python API.

Runs on the serving GPU with the TensorRT of the Triton image's NGC release. tensorrt,
CUDA and the GPU are touched only inside these functions, never at import; nothing here
needs PyTorch, which the engine-builder image leaves out.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from podium.engine.cache import BuildEnvironment
from podium.engine.cuda_runtime import NO_GPU_HINT, first_gpu
from podium.engine.errors import EngineBuildError, NoGpu
from podium.stores.modelrepo.recipe import FP16, BuildRecipe

_TENSORRT_10 = 10


def import_tensorrt() -> ModuleType:
    """The tensorrt module, or NoGpu saying where engines are built instead."""
    try:
        import tensorrt
    except ImportError:
        raise NoGpu(f"no CUDA GPU / TensorRT not installed here (no tensorrt module): {NO_GPU_HINT}") from None
    return tensorrt


def build_environment() -> BuildEnvironment:
    """This machine's GPU (name, compute capability) and TensorRT version; NoGpu without them."""
    tensorrt = import_tensorrt()
    name, compute_capability = first_gpu()
    return BuildEnvironment(name, compute_capability, tensorrt.__version__)


def onnx2trt(onnx_path: Path, recipe: BuildRecipe, timing_cache: bytes | None) -> tuple[bytes, bytes]:
    """Build the engine ``recipe`` describes; returns (plan, updated timing cache)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_explicit_batch_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT's ONNX parser refused {onnx_path}: {errors}")
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    if inputs != [recipe.input_name]:
        raise EngineBuildError(f"the ONNX model's inputs are {inputs}, the recipe expects [{recipe.input_name!r}]")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, recipe.workspace_bytes)
    if recipe.precision == FP16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(recipe.input_name, *recipe.shapes())
    config.add_optimization_profile(profile)
    # A timing cache from an earlier build on this GPU/TensorRT skips re-timing known layers.
    cache = config.create_timing_cache(timing_cache or b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        cache = config.create_timing_cache(b"")  # from another device or version: start afresh
        config.set_timing_cache(cache, ignore_mismatch=False)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(
            "TensorRT could not build the engine (see its log above); check the GPU memory and workspace"
        )
    return bytes(plan), bytes(config.get_timing_cache().serialize())


def _explicit_batch_flags(trt: ModuleType) -> int:
    """TensorRT 10 networks are always explicit-batch (the flag is deprecated); 8.x must ask."""
    if int(trt.__version__.split(".")[0]) >= _TENSORRT_10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
