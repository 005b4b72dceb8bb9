"""`make gpu-check`: the GPU path proved on a GPU machine in one command (a few minutes).

Without a CUDA GPU (``nvidia-smi`` finds none) it says so and exits 0: there is nothing to
prove on a CPU. With one, in two environments, as in production: the export runs here
(PyTorch), everything TensorRT in ``--engine-python``'s environment, which `make gpu-check`
builds like the engine-builder image (the project without PyTorch, TensorRT pinned to the
Triton release's, CUDA 12.9 bindings):

1. `podium export --target gpu` (CHECKPOINT if set, else the seeded untrained model) into
   WORK/model_repository, and sample photographs for the checks.
2. TensorRT: the pinned version (podium.stores.modelrepo.recipe.TENSORRT_VERSION) must be the one
   importable in the engine environment.
3. `podium build-engine` with sample photographs: its FP16 agreement with onnxruntime FP32
   is the gate, and is printed.
4. The engine alone: images per second at batch 64 (TensorRT, this GPU).
5. Through Triton, when a tritonserver with the TensorRT backend is here (an NGC image:
   /opt/tritonserver, or $TRITONSERVER_ROOT): Triton serving the plan, 1,000 photos sent
   by Podium's own client (8 per request, 32 in flight), images per second, Triton's mean
   batch size (nv_inference_count / nv_inference_exec_count), top-1 agreement with
   onnxruntime FP32.

Each step prints what it found; the summary goes to WORK/gpu-check.json. A step that
cannot run says why, and the script exits 1 if a step that could run failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from podium.core.errors import PodiumError

DEFAULT_WORK_DIR = Path(".podium/gpu-check")
ENGINE_BATCH = 64
TRITON_IMAGES = 1000
CHECK_PHOTOS = 256
_TRITON_ROOTS = ("/opt/tritonserver",)


def main(argv: list[str] | None = None) -> int:
    """``gpu_check [--engine-python PY] [WORK]`` (host side), or ``gpu_check --engine WORK``."""
    args = list(argv if argv is not None else sys.argv[1:])
    if args[:1] == ["--engine"]:
        return _engine_stage(Path(args[1]))
    engine_python = sys.executable
    if args[:1] == ["--engine-python"]:
        engine_python, args = args[1], args[2:]
    work = Path(args[0]) if args else DEFAULT_WORK_DIR
    gpus = _gpus()
    if not gpus:
        print("gpu-check: no NVIDIA GPU on this machine (nvidia-smi finds none): nothing to check here. "
              "Run `make gpu-check` on a machine with one.")  # fmt: skip
        return 0
    print(f"gpu-check: {gpus[0]}")
    try:
        _export(work, os.environ.get("CHECKPOINT") or None)
        _photos(work, CHECK_PHOTOS)
        _photos(work, TRITON_IMAGES)
    except StepFailed as exc:
        return _finish(work, {"gpus": gpus, "failed": str(exc)})
    print(f"gpu-check: the engine steps, in {engine_python}'s environment", flush=True)
    return subprocess.run(
        [engine_python, "-m", "podium.cli.operator.gpu_check", "--engine", str(work)], check=False
    ).returncode


def _engine_stage(work: Path) -> int:
    summary: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    repository = work / "model_repository"
    try:
        summary["gpu"], summary["compute_capability"] = _gpu()
        summary["tensorrt"] = _tensorrt()
        summary["fidelity"] = _build_engine(work, repository)
        summary["engine_images_per_s"] = _engine_speed(repository)
        summary["triton"] = _through_triton(work, repository)
    except StepFailed as exc:
        summary["failed"] = str(exc)
    return _finish(work, summary)


def _finish(work: Path, summary: dict) -> int:
    if "failed" in summary:
        print(f"gpu-check: FAILED: {summary['failed']}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "gpu-check.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 1 if "failed" in summary else 0


class StepFailed(PodiumError):
    """A step of the check that could run failed; the message says which and why."""


def _gpus() -> list[str]:
    """``nvidia-smi -L``'s lines: the driver's own view, whatever CUDA bindings are installed."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in listed.stdout.splitlines() if line.startswith("GPU")] if listed.returncode == 0 else []


def _gpu() -> tuple[str, str]:
    from podium.engine.cuda_runtime import first_gpu
    from podium.engine.errors import NoGpu

    try:
        name, capability = first_gpu()
    except NoGpu as exc:
        raise StepFailed(f"nvidia-smi lists a GPU but CUDA finds none: {exc.message} (driver too old for the "
                         "CUDA bindings of this environment?)") from None  # fmt: skip
    print(f"gpu-check: CUDA sees {name} (compute capability {capability})")
    return name, capability


def _tensorrt() -> str:
    from podium.engine.build import check_tensorrt_version
    from podium.engine.errors import EngineBuildError, NoGpu
    from podium.engine.onnx2trt import import_tensorrt
    from podium.stores.modelrepo.recipe import TENSORRT_VERSION

    try:
        found = import_tensorrt().__version__
        check_tensorrt_version(found, TENSORRT_VERSION)
    except (NoGpu, EngineBuildError) as exc:
        raise StepFailed(f"TensorRT: {exc.message} ({exc.hint})" if exc.hint else exc.message) from None
    print(f"gpu-check: TensorRT {found}, the version Triton {TENSORRT_VERSION} plans need")
    return found


def _podium(*args: str) -> None:
    print("gpu-check: podium " + " ".join(args), flush=True)
    if subprocess.run([sys.executable, "-m", "podium", *args], check=False).returncode != 0:
        raise StepFailed(f"`podium {' '.join(args)}` failed (its output is above)")


def _export(work: Path, checkpoint: str | None) -> Path:
    repository = work / "model_repository"
    source = ["--checkpoint", checkpoint] if checkpoint else ["--untrained"]
    _podium("export", *source, "--target", "gpu", "--model-repository", str(repository))
    return repository


def _photos(work: Path, count: int) -> Path:
    """Sample photographs (made on the host side: scikit-image is not in the engine environment)."""
    folder = work / f"photos-{count}"
    if not folder.is_dir() or len(list(folder.iterdir())) < count:
        from podium.samples.photos import write_photo_folder

        write_photo_folder(folder, count=count, seed=5)
    return folder


def _build_engine(work: Path, repository: Path) -> dict:
    from podium.stores.modelrepo import model_dirs, newest_version
    from podium.stores.modelrepo.files import read_json
    from podium.stores.modelrepo.layout import FIDELITY_FILENAME

    # The check images are photographs; the agreement gate is the engine builder's own.
    _podium("build-engine", "--model-repository", str(repository), "--images", str(_photos(work, CHECK_PHOTOS)),
            "--cache-dir", str(work / "engine-cache"))  # fmt: skip
    (model_dir,) = model_dirs(repository, None)
    fidelity = read_json(newest_version(model_dir)[1] / FIDELITY_FILENAME)
    print(f"gpu-check: engine fidelity {json.dumps(fidelity.get('engine', fidelity))}")
    return fidelity


def _engine_speed(repository: Path) -> float:
    from podium.engine.trt_runner import TensorRTRunner
    from podium.stores.modelrepo import model_dirs, newest_version
    from podium.stores.modelrepo.layout import PLAN_FILENAME

    (model_dir,) = model_dirs(repository, None)
    runner = TensorRTRunner((newest_version(model_dir)[1] / PLAN_FILENAME).read_bytes())
    batch = np.random.default_rng(0).integers(0, 256, size=(ENGINE_BATCH, 224, 224, 3), dtype=np.uint8)
    runner(batch)  # warm-up
    started, rounds = time.perf_counter(), 20
    for _ in range(rounds):
        runner(batch)
    rate = rounds * ENGINE_BATCH / (time.perf_counter() - started)
    print(f"gpu-check: the engine alone, batch {ENGINE_BATCH}: {rate:,.0f} images/s (host copies included)")
    return rate


def _triton_root() -> Path | None:
    for root in (os.environ.get("TRITONSERVER_ROOT"), *_TRITON_ROOTS):
        if root and (Path(root) / "backends" / "tensorrt").is_dir() and (Path(root) / "bin" / "tritonserver").is_file():
            return Path(root)
    return None


def _through_triton(work: Path, repository: Path) -> dict:
    root = _triton_root()
    if root is None:
        reason = "no tritonserver with the TensorRT backend here (set TRITONSERVER_ROOT, or run in the NGC image)"
        print(f"gpu-check: through Triton: skipped: {reason}")
        return {"skipped": reason}
    from podium.cluster.processes import ManagedProcess, free_port
    from podium.cluster.triton import triton_ready

    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    argv = [str(root / "bin" / "tritonserver"), f"--model-repository={repository.resolve()}",
            f"--grpc-port={grpc_port}", f"--http-port={http_port}", f"--metrics-port={metrics_port}",
            "--exit-on-error=true"]  # fmt: skip
    server = ManagedProcess("triton", argv, work / "triton.log", lambda: triton_ready(http_port), ready_timeout_s=300)
    server.start()
    try:
        server.wait_ready()
        return _classify_through_triton(work, f"127.0.0.1:{grpc_port}", metrics_port)
    finally:
        server.stop()


def _classify_through_triton(work: Path, url: str, metrics_port: int) -> dict:
    from podium.core.imaging import DecodeMode, Decoder
    from podium.core.modelmeta import DEFAULT_MODEL_NAME, ModelRef
    from podium.stores.inference import Classifiers

    classifier = Classifiers(url, 30.0, images_per_request=8).get(ModelRef(DEFAULT_MODEL_NAME))
    spec = classifier.metadata().preprocessing.spec()
    decoder = Decoder(DecodeMode.EXACT, 64_000_000)
    photos = sorted(_photos(work, TRITON_IMAGES).iterdir())[:TRITON_IMAGES]
    pixels = [decoder.model_input(path.read_bytes(), spec) for path in photos]
    from podium.cluster.triton import inference_counts

    before = inference_counts(metrics_port)
    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda image: classifier.infer(image[None]).probabilities[0], pixels))
    seconds = time.perf_counter() - started
    after = inference_counts(metrics_port)
    inferences, executions = (after[0] - before[0]), (after[1] - before[1])
    result = {
        "images": len(pixels),
        "images_per_s": len(pixels) / seconds,
        "mean_batch_size": inferences / executions if executions else None,
        "top1_agreement_with_onnxruntime_fp32": _agreement_with_onnx(work, pixels, np.stack(answers)),
    }
    print(f"gpu-check: through Triton: {json.dumps(result)}")
    return result


def _agreement_with_onnx(work: Path, pixels: list[np.ndarray], served: np.ndarray) -> float:
    from podium.core.modelmeta import OUTPUT_NAME
    from podium.stores.modelrepo import model_dirs, newest_version, onnx_outputs_runner
    from podium.stores.modelrepo.layout import ONNX_FILENAME

    (model_dir,) = model_dirs(work / "model_repository", None)
    run = onnx_outputs_runner(newest_version(model_dir)[1] / ONNX_FILENAME)
    exact = np.concatenate([run(np.stack(pixels[i : i + 32]))[OUTPUT_NAME] for i in range(0, len(pixels), 32)])
    return float(np.mean(exact.argmax(1) == served.argmax(1)))


if __name__ == "__main__":
    sys.exit(main())
