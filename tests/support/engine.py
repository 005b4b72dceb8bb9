"""A fake TensorRT and a tiny GPU export, for the tests around `podium build-engine`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from export.activation_map import ExplainingModel
from export.torch2onnx import torch2onnx
from podium.core.modelmeta import CAM_NAME, OUTPUT_NAME, ModelMetadata, Preprocessing
from podium.engine.build import EngineToolchain
from podium.engine.cache import BuildEnvironment
from podium.stores.modelrepo.config import build_model_config
from podium.stores.modelrepo.files import file_sha256
from podium.stores.modelrepo.layout import CHECK_IMAGES_FILENAME, RECIPE_FILENAME
from podium.stores.modelrepo.onnx_session import onnx_outputs_runner
from podium.stores.modelrepo.recipe import TENSORRT_VERSION, EngineSettings, recipe_from_settings
from podium.stores.modelrepo.targets import GPU_TARGET
from podium.stores.modelrepo.writer import write_model_version
from tests.support.tiny_resnet import SIZE, tiny_resnet

CLASSES = ["a", "b", "c"]
A100 = BuildEnvironment("NVIDIA A100-SXM4-80GB", "8.0", TENSORRT_VERSION)
H100 = BuildEnvironment("NVIDIA H100 80GB HBM3", "9.0", TENSORRT_VERSION)


@dataclass
class FakeTensorRT:
    """EngineToolchain stand-in: the 'plan' names the ONNX file; running it runs onnxruntime."""

    environment: BuildEnvironment = A100
    noise: float = 0.0  # added to every output: the engine disagrees with onnxruntime
    builds: list[bytes | None] = field(default_factory=list)

    def toolchain(self) -> EngineToolchain:
        return EngineToolchain(lambda: self.environment, self.build, self.runner)

    def build(self, onnx_path: Path, recipe, timing_cache: bytes | None) -> tuple[bytes, bytes]:
        self.builds.append(timing_cache)
        return f"plan:{onnx_path}:{recipe.digest()}".encode(), f"timing after {len(self.builds)} builds".encode()

    def runner(self, plan: bytes):
        onnx_path = Path(plan.decode().split(":")[1])
        run = onnx_outputs_runner(onnx_path)

        def disagreeing(pixels: np.ndarray) -> dict[str, np.ndarray]:
            out = run(pixels)
            if self.noise:
                out[OUTPUT_NAME] = np.roll(out[OUTPUT_NAME], 1, axis=1)  # every top-1 moves to the next class
            return out

        return disagreeing


def metadata(target: str = "gpu") -> ModelMetadata:
    return ModelMetadata(
        model_name="toy",
        target=target,
        precision="fp16" if target == "gpu" else "fp32",
        classes=CLASSES,
        preprocessing=Preprocessing(resize=SIZE, crop=SIZE),
        checkpoint_sha256="f" * 64,
    )


def tiny_onnx(path: Path) -> Path:
    """A tiny ResNet with its activation map, exported as `podium export` does."""
    model = ExplainingModel(tiny_resnet(len(CLASSES)))
    torch2onnx(model, path, input_size=SIZE, output_names=(OUTPUT_NAME, CAM_NAME))
    return path


def export_gpu(repository: Path, work: Path, images: int = 6) -> Path:
    """What `podium export --target gpu` writes, with the tiny model: returns the pending folder."""
    work.mkdir(parents=True, exist_ok=True)
    onnx_file = tiny_onnx(work / "model.onnx")
    names = [f"img{i}.jpg" for i in range(images)]
    recipe = recipe_from_settings(EngineSettings(), onnx_sha256=file_sha256(onnx_file), crop=SIZE, check_images=names)
    (work / RECIPE_FILENAME).write_text(recipe.model_dump_json())
    rng = np.random.default_rng(0)
    np.save(work / CHECK_IMAGES_FILENAME, rng.integers(0, 256, (images, SIZE, SIZE, 3), dtype=np.uint8))
    meta = metadata()
    written = write_model_version(
        repository,
        build_model_config(meta, GPU_TARGET, 64),
        metadata=meta,
        onnx_file=onnx_file,
        fidelity={"reference": "pytorch-fp32", "top1_agreement": 1.0, "max_abs_diff": 0.0},
        extra_files={RECIPE_FILENAME: work / RECIPE_FILENAME, CHECK_IMAGES_FILENAME: work / CHECK_IMAGES_FILENAME},
        pending=True,
    )
    assert written.pending
    return written.onnx_path.parent
