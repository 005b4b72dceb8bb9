"""``podium build-engine``: give every GPU model version the TensorRT engine of this GPU.

For each pending version (``.pending-<N>``, written by ``podium export --target gpu``) and
each installed GPU version whose engine was built for another GPU or TensorRT, it takes the
engine from the cache or builds it, checks it against onnxruntime FP32 on the version's
check images (or ``--images DIR``), refuses it below the agreement threshold, and installs
it: ``model.plan`` into the version folder, which a pending version then becomes.

Everything that touches the GPU sits behind ``EngineToolchain``, so that the choice of
work, the cache, the fidelity gate and the installation are tested without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from podium.core.errors import InvalidArgument
from podium.core.imaging import folder_image_set
from podium.core.modelmeta import CAM_NAME, OUTPUT_NAME, ModelMetadata
from podium.engine.cache import BuildEnvironment, EngineCache, EngineKey
from podium.engine.errors import EngineBuildError
from podium.stores.modelrepo import (
    Agreement,
    BuildRecipe,
    OutputsRunner,
    compare,
    compare_maps,
    installed_versions,
    model_dirs,
    onnx_outputs_runner,
    pending_versions,
    promote_pending_version,
    require_decisive_agreement,
    run_batched_outputs,
)
from podium.stores.modelrepo.files import file_sha256, read_json, replace_bytes, replace_json
from podium.stores.modelrepo.layout import (
    CHECK_IMAGES_FILENAME,
    ENGINE_INFO_FILENAME,
    FIDELITY_FILENAME,
    METADATA_FILENAME,
    ONNX_FILENAME,
    PLAN_FILENAME,
    RECIPE_FILENAME,
)
from podium.stores.modelrepo.recipe import NGC_RELEASE, TENSORRT_VERSION

MAX_CHECK_IMAGES = 256
# An FP16 engine of this model moves a probability by ~1e-3 (docs/export.md); far beyond is a broken build.
MAX_ENGINE_PROBABILITY_DIFF = 0.02
# With fewer in-domain images one disagreement decides the gate, and agreement on all of
# them bounds the true agreement only loosely (12 of 12: ~75% at 95% confidence).
MIN_CHECK_IMAGES = 200
CHECK_BATCH_SIZE = 16
REFERENCE = "onnxruntime-fp32"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EngineToolchain:
    """The GPU-side steps; ``gpu_toolchain()`` is the real one, tests pass fakes."""

    environment: Callable[[], BuildEnvironment]
    build: Callable[[Path, BuildRecipe, bytes | None], tuple[bytes, bytes]]
    runner: Callable[[bytes], OutputsRunner]


def gpu_toolchain() -> EngineToolchain:
    from podium.engine.onnx2trt import build_environment, onnx2trt

    def runner(plan: bytes) -> OutputsRunner:
        from podium.engine.trt_runner import TensorRTRunner

        return TensorRTRunner(plan)

    return EngineToolchain(build_environment, onnx2trt, runner)


@dataclass
class EngineOutcome:
    """What happened to one model version."""

    model: str
    version: int
    action: str  # "built", "from cache", "up to date"
    fidelity: dict = field(default_factory=dict)


def check_tensorrt_version(found: str, wanted: str) -> None:
    """Refuse a builder whose plans the target Triton could not load."""
    if int(found.split(".")[0]) >= 11:
        raise EngineBuildError(
            f"TensorRT {found} is not supported: TensorRT 11 removed weakly typed networks and BuilderFlag.FP16, "
            f"and Triton {NGC_RELEASE} loads TensorRT {wanted} plans only",
            hint=f"build in the engine-builder image (nvcr.io/nvidia/tensorrt:{NGC_RELEASE}-py3) "
            f"or pip install tensorrt-cu12=={wanted}",
        )
    if found != wanted:
        raise EngineBuildError(
            f"TensorRT {found} would build a plan the target Triton (TensorRT {wanted}) cannot load",
            hint=f"build in the engine-builder image (nvcr.io/nvidia/tensorrt:{NGC_RELEASE}-py3), pip install "
            f"tensorrt-cu12=={wanted}, or set PODIUM_ENGINE_TENSORRT_VERSION to your Triton's TensorRT",
        )


def build_engines(
    repository: Path,
    *,
    cache_dir: Path,
    model_name: str | None = None,
    images: Path | None = None,
    min_top1_agreement: float | None = None,
    toolchain: EngineToolchain | None = None,
    progress: Progress | None = None,
    tensorrt_version: str = TENSORRT_VERSION,
) -> list[EngineOutcome]:
    """Build, check and install the engines the repository's GPU versions lack on this GPU."""
    report = progress or (lambda message: None)
    tools = toolchain or gpu_toolchain()
    environment = tools.environment()  # fails fast, with what to do, where there is no GPU/TensorRT
    check_tensorrt_version(environment.tensorrt_version, tensorrt_version)
    report(
        f"GPU {environment.gpu_name} (compute {environment.compute_capability}), "
        f"TensorRT {environment.tensorrt_version}"
    )
    cache = EngineCache(cache_dir)
    outcomes = []
    for model_dir in model_dirs(Path(repository), model_name):
        for version, version_dir in _gpu_versions(model_dir):
            outcome = _ensure_engine(
                model_dir, version, version_dir, environment, cache, tools, images, min_top1_agreement, report
            )
            outcomes.append(outcome)
    return outcomes


def _ensure_engine(
    model_dir: Path,
    version: int,
    version_dir: Path,
    environment: BuildEnvironment,
    cache: EngineCache,
    tools: EngineToolchain,
    images: Path | None,
    min_top1_agreement: float | None,
    report: Progress,
) -> EngineOutcome:
    where = f"{model_dir.name} version {version}"
    recipe = BuildRecipe.read(version_dir)
    onnx_path = version_dir / ONNX_FILENAME
    if file_sha256(onnx_path) != recipe.onnx_sha256:
        raise EngineBuildError(f"{onnx_path} does not match its {RECIPE_FILENAME} (sha256 differs); export it again")
    key = EngineKey.of(recipe.onnx_sha256, environment, recipe.digest())
    if _installed_key(version_dir) == key.as_dict() and (version_dir / PLAN_FILENAME).is_file():
        return EngineOutcome(model_dir.name, version, "up to date", read_json(version_dir / FIDELITY_FILENAME))
    threshold = recipe.min_top1_agreement if min_top1_agreement is None else min_top1_agreement

    cached = cache.get(key)
    if cached is not None and images is None:
        report(f"{where}: engine found in the cache")
        plan, check, action = cached.plan, cached.info["check"], "from cache"
    else:
        plan = (
            cached.plan if cached is not None else _build(onnx_path, recipe, environment, cache, tools, where, report)
        )
        report(f"{where}: checking the engine against onnxruntime FP32")
        check = check_engine(tools.runner(plan), onnx_path, _check_images(version_dir, recipe, images))
        action = "from cache" if cached is not None else "built"
    engine_report = {**check, "min_top1_agreement": threshold, "key": key.as_dict()}
    if images is None:
        report(
            f"{where}: checked on the export's {check['images']} built-in pictures only: pass --images DIR with "
            f">= {MIN_CHECK_IMAGES} in-domain photos (e.g. the data set's valid/) for a gate that means something"
        )
    require_decisive_agreement(
        Agreement.from_report(check),
        threshold,
        MAX_ENGINE_PROBABILITY_DIFF,
        what=f"the TensorRT engine of {where}",
        override="lower --min-agreement if the difference is understood",
    )
    cache.put(key, plan, {"check": check})
    _install(model_dir, version_dir, plan, key, engine_report, environment)
    report(f"{where}: engine installed ({action})")
    return EngineOutcome(model_dir.name, version, action, engine_report)


def _build(
    onnx_path: Path,
    recipe: BuildRecipe,
    environment: BuildEnvironment,
    cache: EngineCache,
    tools: EngineToolchain,
    where: str,
    report: Progress,
) -> bytes:
    low, opt, high = (shape[0] for shape in recipe.shapes())
    report(f"{where}: building the {recipe.precision.upper()} engine (batch {low}/{opt}/{high}); this takes minutes")
    plan, timing_cache = tools.build(onnx_path, recipe, cache.read_timing_cache(environment))
    cache.write_timing_cache(environment, timing_cache)
    return plan


def check_engine(engine: OutputsRunner, onnx_path: Path, check: tuple[list[str], np.ndarray]) -> dict:
    """The engine's figures against onnxruntime FP32 on the same images (JSON-ready): its
    probabilities, and its activation maps on the images whose top-1 class both share."""
    names, pixels = check
    reference = run_batched_outputs(onnx_outputs_runner(onnx_path), pixels, CHECK_BATCH_SIZE)
    candidate = run_batched_outputs(engine, pixels, CHECK_BATCH_SIZE)
    expected, got = reference[OUTPUT_NAME], candidate[OUTPUT_NAME]
    figures = {"reference": REFERENCE, "image_names": names, **compare(expected, got, names).as_report()}
    if CAM_NAME in reference and CAM_NAME in candidate:
        same_class = expected.argmax(axis=1) == got.argmax(axis=1)
        figures["cam"] = compare_maps(reference[CAM_NAME], candidate[CAM_NAME], names, same_class).as_report()
    return figures


def _check_images(version_dir: Path, recipe: BuildRecipe, images: Path | None) -> tuple[list[str], np.ndarray]:
    if images is not None:
        metadata = ModelMetadata.from_json((version_dir / METADATA_FILENAME).read_text(encoding="utf-8"))
        found = folder_image_set(images, metadata.preprocessing.spec(), MAX_CHECK_IMAGES)
        if len(found.names) < MIN_CHECK_IMAGES:
            raise InvalidArgument(
                f"{images} holds {len(found.names)} decodable images; the engine check needs at least "
                f"{MIN_CHECK_IMAGES} in-domain photos",
                hint="pass a bigger folder, e.g. the data set's valid/ (or leave out --images for the built-in pictures)",
            )
        return list(found.names), found.pixels
    path = version_dir / CHECK_IMAGES_FILENAME
    if not path.is_file():
        raise EngineBuildError(f"{version_dir} has no {CHECK_IMAGES_FILENAME}; pass --images DIR with photographs")
    return list(recipe.check_images), np.load(path, allow_pickle=False)


def _install(
    model_dir: Path, version_dir: Path, plan: bytes, key: EngineKey, check: dict, environment: BuildEnvironment
) -> None:
    """model.plan, engine.json and the engine's fidelity into the version; promote a pending one."""
    replace_bytes(version_dir / PLAN_FILENAME, plan)
    info = {"key": key.as_dict(), "built_for": environment.__dict__, "installed_at": _now()}
    replace_json(version_dir / ENGINE_INFO_FILENAME, info)
    fidelity = read_json(version_dir / FIDELITY_FILENAME) | {"engine": check}
    replace_json(version_dir / FIDELITY_FILENAME, fidelity)
    if not version_dir.name.isdigit():
        promote_pending_version(model_dir, version_dir)


def _gpu_versions(model_dir: Path) -> list[tuple[int, Path]]:
    """Installed and pending versions that carry a build recipe (i.e. GPU versions)."""
    versions = installed_versions(model_dir) + pending_versions(model_dir)
    return sorted((v, p) for v, p in versions if (p / RECIPE_FILENAME).is_file())


def _installed_key(version_dir: Path) -> dict | None:
    return read_json(version_dir / ENGINE_INFO_FILENAME).get("key")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
