"""GPU versions and `podium build-engine`, around the build: pending versions, cache keys,
the fidelity gate and the installation, with a fake TensorRT (fast). The real build runs
only where CUDA and TensorRT are present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2
from typer.testing import CliRunner

from podium.cli.failures import exit_code
from podium.cli.main import build_app
from podium.core.errors import InvalidArgument, Status
from podium.engine import EngineBuildError, NoGpu
from podium.engine.build import build_engines
from podium.engine.cache import BuildEnvironment, EngineCache, EngineKey
from podium.stores.modelrepo import FidelityError, ModelRepositoryError
from podium.stores.modelrepo.config import build_model_config
from podium.stores.modelrepo.fidelity import Agreement, compare, require_agreement, run_batched
from podium.stores.modelrepo.layout import next_version, pending_versions
from podium.stores.modelrepo.listing import ENGINE_MISSING, PENDING, READY, list_models
from podium.stores.modelrepo.recipe import BUILDER_REVISION, TENSORRT_VERSION, BuildRecipe
from podium.stores.modelrepo.targets import CPU_TARGET
from podium.stores.modelrepo.writer import write_model_version
from tests.support.engine import A100, H100, FakeTensorRT, export_gpu, metadata, tiny_onnx


def build(repository: Path, tmp_path: Path, fake: FakeTensorRT, **kwargs):
    return build_engines(repository, cache_dir=tmp_path / "cache", toolchain=fake.toolchain(), **kwargs)


# --- pending versions ------------------------------------------------------------------


def test_gpu_export_waits_hidden_from_triton(tmp_path: Path):
    repository = tmp_path / "repo"
    pending = export_gpu(repository, tmp_path / "work")
    model_dir = repository / "toy"
    assert pending == model_dir / ".pending-1"
    assert sorted(p.name for p in model_dir.iterdir()) == [".pending-1"]  # no numeric version, no served config
    assert sorted(p.name for p in pending.iterdir()) == [
        "build.json",
        "check_images.npy",
        "config.pbtxt",
        "fidelity.json",
        "labels.txt",
        "model.onnx",
        "podium.json",
    ]
    assert next_version(model_dir) == 2  # a pending version holds its number
    [(summary)] = list_models(repository)
    assert (summary.version, summary.status, summary.target, summary.precision) == (1, PENDING, "gpu", "fp16")


def test_build_installs_the_engine_and_promotes_the_version(tmp_path: Path):
    repository = tmp_path / "repo"
    export_gpu(repository, tmp_path / "work")
    fake = FakeTensorRT()
    (outcome,) = build(repository, tmp_path, fake)
    assert (outcome.model, outcome.version, outcome.action) == ("toy", 1, "built")
    version_dir = repository / "toy" / "1"
    assert (version_dir / "model.plan").read_bytes().startswith(b"plan:")
    assert not pending_versions(repository / "toy")
    config = text_format.Parse((repository / "toy" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert (config.platform, config.max_batch_size) == ("tensorrt_plan", 64)
    assert (repository / "toy" / "labels.txt").read_text() == "a\nb\nc\n"
    assert not (version_dir / "config.pbtxt").exists()
    fidelity = json.loads((version_dir / "fidelity.json").read_text())
    engine = fidelity["engine"]
    assert (engine["reference"], engine["top1_agreement"], engine["images"]) == ("onnxruntime-fp32", 1.0, 6)
    assert engine["max_abs_diff"] == 0.0 and engine["min_top1_agreement"] == 0.995
    # The engine's activation maps are compared too, on the images of the same top-1 class.
    assert (engine["cam"]["images"], engine["cam"]["min_r"]) == (6, pytest.approx(1.0))
    assert engine["key"]["gpu_name"] == A100.gpu_name and engine["key"]["tensorrt_version"] == TENSORRT_VERSION
    info = json.loads((version_dir / "engine.json").read_text())
    assert info["key"] == engine["key"]
    [(summary)] = list_models(repository)
    assert (summary.status, summary.served, summary.top1_agreement) == (READY, True, 1.0)


def test_second_run_is_up_to_date_and_another_gpu_rebuilds(tmp_path: Path):
    repository = tmp_path / "repo"
    export_gpu(repository, tmp_path / "work")
    fake = FakeTensorRT()
    build(repository, tmp_path, fake)
    (again,) = build(repository, tmp_path, fake)
    assert again.action == "up to date" and len(fake.builds) == 1
    fake.environment = H100  # the same repository deployed on another GPU model
    (rebuilt,) = build(repository, tmp_path, fake)
    assert rebuilt.action == "built" and len(fake.builds) == 2
    assert rebuilt.fidelity["key"]["compute_capability"] == "9.0"
    fake.environment = A100  # back: the A100 engine comes from the cache, no build
    (cached,) = build(repository, tmp_path, fake)
    assert cached.action == "from cache" and len(fake.builds) == 2


def test_timing_cache_is_reused_across_builds_on_one_gpu(tmp_path: Path):
    fake = FakeTensorRT()
    export_gpu(tmp_path / "repo1", tmp_path / "work1")
    build(tmp_path / "repo1", tmp_path, fake)
    export_gpu(tmp_path / "repo2", tmp_path / "work2")
    (tmp_path / "repo2" / "toy" / ".pending-1" / "build.json").write_text(
        (tmp_path / "repo2" / "toy" / ".pending-1" / "build.json")
        .read_text()
        .replace('"opt_batch_size":32', '"opt_batch_size":16')
    )
    build(tmp_path / "repo2", tmp_path, fake)
    assert fake.builds == [None, b"timing after 1 builds"]


def test_engine_below_the_threshold_is_refused_and_stays_pending(tmp_path: Path):
    repository = tmp_path / "repo"
    export_gpu(repository, tmp_path / "work")
    with pytest.raises(FidelityError, match=r"TensorRT engine of toy version 1 agrees in top-1 on 0\.0% of the 6 of 6"):
        build(repository, tmp_path, FakeTensorRT(noise=1.0))
    assert [v for v, _ in pending_versions(repository / "toy")] == [1]
    assert not (repository / "toy" / "config.pbtxt").exists()
    assert not list((tmp_path / "cache").glob("engines/*"))  # a refused engine is not cached either


def test_a_changed_onnx_file_is_refused(tmp_path: Path):
    pending = export_gpu(tmp_path / "repo", tmp_path / "work")
    with open(pending / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(EngineBuildError, match="does not match its build.json"):
        build(tmp_path / "repo", tmp_path, FakeTensorRT())


def test_new_gpu_version_keeps_the_served_one_until_its_engine_exists(tmp_path: Path):
    repository = tmp_path / "repo"
    export_gpu(repository, tmp_path / "work1")
    fake = FakeTensorRT()
    build(repository, tmp_path, fake)
    served_config = (repository / "toy" / "config.pbtxt").read_text()
    export_gpu(repository, tmp_path / "work2")
    assert (repository / "toy" / "config.pbtxt").read_text() == served_config
    assert [(s.version, s.status, s.served) for s in list_models(repository)] == [(1, READY, True), (2, PENDING, False)]
    build(repository, tmp_path, fake)
    assert [(s.version, s.status, s.served) for s in list_models(repository)] == [(1, READY, False), (2, READY, True)]


def test_a_gpu_version_cannot_join_a_cpu_model(tmp_path: Path):
    repository = tmp_path / "repo"
    onnx_file = tiny_onnx(tmp_path / "model.onnx")
    meta = metadata("cpu")
    write_model_version(
        repository,
        build_model_config(meta, CPU_TARGET),
        metadata=meta,
        onnx_file=onnx_file,
        fidelity={},
        extra_files=CPU_TARGET.extra_files,
    )
    with pytest.raises(ModelRepositoryError, match="served by python; this target needs tensorrt_plan"):
        export_gpu(repository, tmp_path / "work")


def test_installed_gpu_version_without_plan_shows_engine_missing(tmp_path: Path):
    repository = tmp_path / "repo"
    export_gpu(repository, tmp_path / "work")
    build(repository, tmp_path, FakeTensorRT())
    (repository / "toy" / "1" / "model.plan").unlink()
    [(summary)] = list_models(repository)
    assert summary.status == ENGINE_MISSING


# --- cache keys ------------------------------------------------------------------------


def test_engine_key_separates_gpus_tensorrt_versions_models_and_recipes():
    key = EngineKey.of("ab" * 32, A100, "r1")
    assert key.digest() == EngineKey.of("ab" * 32, A100, "r1").digest()
    others = [
        EngineKey.of("cd" * 32, A100, "r1"),
        EngineKey.of("ab" * 32, H100, "r1"),
        EngineKey.of("ab" * 32, BuildEnvironment(A100.gpu_name, A100.compute_capability, "10.12.0"), "r1"),
        EngineKey.of("ab" * 32, A100, "r2"),
    ]
    assert len({key.digest(), *(other.digest() for other in others)}) == 5


def test_engine_cache_round_trip_and_damaged_entries(tmp_path: Path):
    cache = EngineCache(tmp_path)
    key = EngineKey.of("ab" * 32, A100, "r1")
    assert cache.get(key) is None
    entry = cache.put(key, b"plan bytes", {"check": {"top1_agreement": 1.0}})
    cached = cache.get(key)
    assert cached.plan == b"plan bytes" and cached.info["check"] == {"top1_agreement": 1.0}
    (entry / "engine.json").write_text("{not json")
    assert cache.get(key) is None
    assert cache.read_timing_cache(A100) is None
    cache.write_timing_cache(A100, b"timing")
    assert cache.read_timing_cache(A100) == b"timing" and cache.read_timing_cache(H100) is None


# --- the fidelity gate with made-up outputs ----------------------------------------------


def test_compare_counts_top1_and_probability_differences():
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]], np.float32)
    candidate = reference.copy()
    candidate[3] = [0.4, 0.5, 0.1]
    agreement = compare(reference, candidate, ["w", "x", "y", "z"])
    assert agreement.top1_agreement == 0.75 and agreement.disagreeing == ("z",)
    assert agreement.max_abs_diff == pytest.approx(0.1) and agreement.mean_abs_diff == pytest.approx(0.2 / 12)
    assert Agreement.from_report(agreement.as_report()) == agreement


def test_gate_passes_at_the_threshold_and_refuses_below():
    agreement = Agreement(images=200, top1_agreement=0.995, max_abs_diff=0.01, mean_abs_diff=0.001, disagreeing=("a",))
    require_agreement(agreement, 0.995, what="the engine", override="lower it")
    with pytest.raises(FidelityError, match=r"below the required 99\.6%.*differs on a.*lower it"):
        require_agreement(agreement, 0.996, what="the engine", override="lower it")


def test_compare_refuses_mismatched_outputs():
    with pytest.raises(InvalidArgument, match="cannot compare"):
        compare(np.zeros((2, 3)), np.zeros((2, 4)), ["a", "b"])


def test_run_batched_splits_and_joins():
    sizes = []

    def runner(pixels: np.ndarray) -> np.ndarray:
        sizes.append(len(pixels))
        return pixels.reshape(len(pixels), -1)[:, :2].astype(np.float32)

    out = run_batched(runner, np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2, 1), batch_size=2)
    assert sizes == [2, 2, 1] and out.shape == (5, 2)


# --- this machine: no GPU ------------------------------------------------------------------


def test_build_engine_without_gpu_fails_fast_with_what_to_do(tmp_path: Path):
    if _gpu_missing() is None:
        pytest.skip("this machine has CUDA and TensorRT: the no-GPU path cannot be shown here")
    export_gpu(tmp_path / "repo", tmp_path / "work")
    result = CliRunner().invoke(build_app(), ["build-engine", "--model-repository", str(tmp_path / "repo")])
    assert result.exit_code == exit_code(Status.FAILED_PRECONDITION), result.output
    assert "no CUDA GPU / TensorRT not installed" in result.output
    assert "engine-builder service" in " ".join(result.output.split())
    assert pending_versions(tmp_path / "repo" / "toy")  # nothing was touched


def test_build_engine_help_documents_the_build():
    result = CliRunner().invoke(build_app(), ["build-engine", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in (
        "explicit batch",
        "optimisation profile",
        "FP16",
        "workspace",
        "timing cache",
        "99.5%",
        "GPU name and compute capability",
        "--model-name",
        "--images",
        "--min-agreement",
    ):
        assert phrase in text, phrase


def test_models_command_lists_versions(tmp_path: Path):
    export_gpu(tmp_path / "repo", tmp_path / "work")
    result = CliRunner().invoke(
        build_app(), ["models", "--model-repository", str(tmp_path / "repo")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "toy" in result.output and "pending engine" in result.output and "gpu (fp16)" in result.output


# --- the real build: only with CUDA and TensorRT -------------------------------------------


def _gpu_missing() -> str | None:
    try:
        from podium.engine.onnx2trt import build_environment

        build_environment()
    except NoGpu as exc:
        return str(exc)
    return None


@pytest.mark.gpu
def test_real_engine_build_agrees_with_onnxruntime(tmp_path: Path):
    reason = _gpu_missing()
    if reason:
        pytest.skip(f"needs a CUDA GPU and TensorRT: {reason}")
    export_gpu(tmp_path / "repo", tmp_path / "work")
    (outcome,) = build_engines(tmp_path / "repo", cache_dir=tmp_path / "cache")
    assert outcome.action == "built" and outcome.fidelity["top1_agreement"] >= 0.995
    assert (tmp_path / "repo" / "toy" / "1" / "model.plan").stat().st_size > 0


@pytest.mark.parametrize(
    ("found", "message"),
    [("11.1.0.5", "TensorRT 11 removed"), ("10.13.3.9", "cannot load"), ("10.11.0", "cannot load")],
)
def test_a_builder_of_another_tensorrt_is_refused_before_anything_is_built(tmp_path, found, message):
    fake = FakeTensorRT(BuildEnvironment(A100.gpu_name, A100.compute_capability, found))
    with pytest.raises(EngineBuildError, match=message) as refused:
        build_engines(tmp_path / "repo", cache_dir=tmp_path / "cache", toolchain=fake.toolchain())
    assert TENSORRT_VERSION in refused.value.hint and not (tmp_path / "cache").exists()


def test_the_recipe_digest_changes_with_the_builder_revision():
    recipe = BuildRecipe(onnx_sha256="ab" * 32, crop=224, opt_batch_size=32, max_batch_size=64,
                         workspace_bytes=1 << 30, min_top1_agreement=0.995)  # fmt: skip
    assert recipe.digest() != recipe.model_copy(update={"builder_revision": BUILDER_REVISION + 1}).digest()


def test_near_ties_do_not_count_and_a_large_probability_change_does():
    from podium.stores.modelrepo.fidelity import MARGIN_EPSILON, require_decisive_agreement

    reference = np.array([[0.5, 0.5 - MARGIN_EPSILON / 2, 0.0 + MARGIN_EPSILON / 2], [0.9, 0.05, 0.05]])
    flipped_tie = np.array([[0.5 - MARGIN_EPSILON / 2, 0.5, MARGIN_EPSILON / 2], [0.9, 0.05, 0.05]])
    agreement = compare(reference, flipped_tie, ["tie", "clear"])
    assert agreement.top1_agreement == 0.5 and agreement.decisive_agreement == 1.0 and agreement.near_ties == 1
    require_decisive_agreement(agreement, 0.995, 0.02, what="engine", override="x")
    moved = np.array([[0.5, 0.5 - MARGIN_EPSILON / 2, MARGIN_EPSILON / 2], [0.8, 0.15, 0.05]])
    with pytest.raises(FidelityError, match=r"max \|Δp\| 0\.1"):
        require_decisive_agreement(
            compare(reference, moved, ["tie", "clear"]), 0.995, 0.02, what="engine", override="x"
        )


def test_a_check_folder_needs_200_in_domain_images(tmp_path):
    repository = tmp_path / "repo"
    export_gpu(repository, tmp_path / "work")
    few = tmp_path / "few"
    few.mkdir()
    for i in range(5):
        Image.fromarray(np.full((64, 64, 3), 40 * i, dtype=np.uint8)).save(few / f"{i}.png")
    with pytest.raises(InvalidArgument, match="at least 200 in-domain photos"):
        build(repository, tmp_path, FakeTensorRT(), images=few)
