"""The cpu-int8 step of an export: quantise the verified FP32 ONNX model and vouch for it.

Calibrates on a folder's images, then compares the INT8 model with PyTorch FP32 on the
images held out of calibration, on every INT8 kernel arithmetic this machine can run
(``export.int8_kernel_checks``), measures its speed-up over FP32 side by side, and refuses
it below the gates on any of them unless forced. Everything goes into its fidelity report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from export.activation_map import ExplainingModel
from export.calibration import HOLDOUT_EVERY, split_calibration_folder
from export.int8_kernel_checks import KernelCheck, check_kernel_paths
from export.onnx2int8 import measure_int8_speed, onnx2int8
from export.verify import REFERENCE_FP32
from podium.core.modelmeta import ModelMetadata
from podium.stores.modelrepo import require_agreement, run_batched
from podium.stores.modelrepo.cpu_kernels import this_cpu
from podium.stores.modelrepo.fidelity import FidelityError, fidelity_report

DEFAULT_MIN_INT8_AGREEMENT = 0.98
# The INT8 backbone's features carry quantisation noise into the maps: the stand-in's
# held-out maps correlate with FP32's at mean r 0.963 (min 0.914), the same on VNNI and
# AVX2 kernels; below this mean they would point elsewhere.
MIN_INT8_MAP_CORRELATION = 0.9
INT8_MODEL = "onnxruntime-int8 (static QDQ, uint8 activations, per-channel 7-bit int8 weights)"


def quantise_verified(
    serving_model: ExplainingModel,
    fp32_onnx: Path,
    int8_onnx: Path,
    calibration_dir: Path,
    metadata: ModelMetadata,
    *,
    fp32_check: dict,
    min_agreement: float = DEFAULT_MIN_INT8_AGREEMENT,
    force: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """Write ``int8_onnx`` and return its fidelity report; FidelityError below ``min_agreement``."""
    split = split_calibration_folder(calibration_dir, metadata.preprocessing.spec())
    progress(f"quantising to INT8, calibrating on {len(split.calibration)} images of {calibration_dir}")
    int8_onnx.parent.mkdir(parents=True, exist_ok=True)
    kept_fp32 = onnx2int8(fp32_onnx, int8_onnx, split.calibration)

    held_out = split.held_out
    progress(f"comparing INT8 with PyTorch FP32 on {len(held_out)} held-out images")
    reference = run_batched(serving_model.predict, held_out.pixels)
    reference_maps = run_batched(lambda pixels: serving_model.explain(pixels)[1], held_out.pixels)
    checks = check_kernel_paths(int8_onnx, held_out, reference, reference_maps, progress)
    agreement, maps = checks[0].agreement, checks[0].maps
    progress("measuring INT8 and FP32 onnxruntime throughput side by side")
    speed = measure_int8_speed(fp32_onnx, int8_onnx, held_out.pixels)
    report = fidelity_report(
        target=metadata.target,
        model=INT8_MODEL,
        reference=REFERENCE_FP32,
        names=held_out.names,
        agreement=agreement,
        preprocessing=metadata.preprocessing,
        min_top1_agreement=min_agreement,
        forced=force and agreement.top1_agreement < min_agreement,
        int8_speedup=speed.int8_speedup,
        throughput=speed.as_report(),
        calibration={
            "folder": str(calibration_dir),
            "images": len(split.calibration),
            "held_out": len(held_out),
            "held_out_rule": f"every {HOLDOUT_EVERY}th decodable image in sorted path order",
            "fp32_nodes": kept_fp32,
        },
        onnx_fp32=fp32_check,
        cam={"reference": REFERENCE_FP32, **maps.as_report()},
        cpu=this_cpu(),
        kernel_checks=[check.as_report() for check in checks],
    )
    if not force:
        for check in checks:
            _require_fidelity(check, min_agreement)
    return report


def _require_fidelity(check: KernelCheck, min_agreement: float) -> None:
    """FidelityError unless the check's top-1 agreement and maps reach the gates."""
    what = f"the INT8 model on {check.label}"
    require_agreement(check.agreement, min_agreement, what=what, override="pass --force to install it anyway")
    if check.maps.images and check.maps.mean_r < MIN_INT8_MAP_CORRELATION:
        raise FidelityError(
            f"{what}: its activation maps follow FP32's at mean Pearson r {check.maps.mean_r:.3f}, below "
            f"{MIN_INT8_MAP_CORRELATION} (worst {check.maps.worst}); not installed. Calibrate on more photographs "
            "like those it will classify, or pass --force to install it anyway"
        )
