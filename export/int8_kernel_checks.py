"""The INT8 model against PyTorch on each kernel arithmetic this machine can run.

onnxruntime's INT8 kernels add up products exactly (VNNI, AMX) or through saturating
16-bit pair sums (AVX2, AVX-512 without VNNI), chosen by the CPU alone. An exported model
may be served on either, so the held-out comparison runs natively and, where the native
kernels are exact and qemu is installed, again as an AVX2 CPU under qemu. Each check
records the arithmetic its probe measured; the fidelity report lists them all and the
served model warns on a CPU whose arithmetic none of them covered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from podium.core.imaging import ImageSet
from podium.core.modelmeta import CAM_NAME, OUTPUT_NAME
from podium.stores.modelrepo import (
    Agreement,
    MapAgreement,
    compare,
    compare_maps,
    onnx_outputs_runner,
    run_batched_outputs,
)
from podium.stores.modelrepo.cpu_kernels import SATURATING_INT16_PAIRS, cpu_flags, kernel_path
from podium.stores.modelrepo.kernel_probe import EMULATED_PATH, QEMU, emulator, observed_arithmetic, run_emulated

# qemu runs ResNet50 INT8 at ~3 s per image on 2 cores; the limit leaves a slow machine room.
_EMULATED_SECONDS_PER_IMAGE = 30
_EMULATED_STARTUP_S = 120


@dataclass(frozen=True)
class KernelCheck:
    """One run of the INT8 model on the held-out images, on one kernel arithmetic."""

    kernel_path: str
    arithmetic: str
    emulated: bool
    agreement: Agreement
    maps: MapAgreement

    @property
    def label(self) -> str:
        return f"{self.kernel_path} kernels ({self.arithmetic}{', emulated with qemu' if self.emulated else ''})"

    def as_report(self) -> dict:
        return {
            "kernel_path": self.kernel_path,
            "arithmetic": self.arithmetic,
            "emulated": self.emulated,
            "top1_agreement": self.agreement.top1_agreement,
            "decisive_agreement": self.agreement.decisive_agreement,
            "max_abs_diff": self.agreement.max_abs_diff,
            "disagreeing": list(self.agreement.disagreeing),
            "cam_mean_r": self.maps.mean_r,
            "cam_min_r": self.maps.min_r,
        }


def check_kernel_paths(
    int8_onnx: Path,
    held_out: ImageSet,
    reference: np.ndarray,
    reference_maps: np.ndarray,
    progress: Callable[[str], None] = lambda message: None,
) -> list[KernelCheck]:
    """The native check first, then the emulated AVX2 one where it adds an arithmetic."""
    native = run_batched_outputs(onnx_outputs_runner(int8_onnx), held_out.pixels)
    arithmetic = observed_arithmetic()
    checks = [_check(kernel_path(cpu_flags()), arithmetic, False, native, held_out.names, reference, reference_maps)]
    if arithmetic == SATURATING_INT16_PAIRS:
        return checks
    if emulator() is None:
        progress(
            f"{QEMU} not found: the INT8 model is checked on this CPU's {arithmetic} kernels only; "
            "install qemu-user to check AVX2's too"
        )
        return checks
    progress(f"comparing again as an AVX2 CPU under {QEMU} ({len(held_out)} images, ~3 s each)")
    timeout = _EMULATED_STARTUP_S + _EMULATED_SECONDS_PER_IMAGE * len(held_out)
    emulated, seen = run_emulated(int8_onnx, held_out.pixels, timeout_s=timeout)
    checks.append(_check(EMULATED_PATH, seen, True, emulated, held_out.names, reference, reference_maps))
    return checks


def _check(
    path: str,
    arithmetic: str,
    emulated: bool,
    outputs: dict[str, np.ndarray],
    names: list[str],
    reference: np.ndarray,
    reference_maps: np.ndarray,
) -> KernelCheck:
    probabilities = outputs[OUTPUT_NAME]
    agreement = compare(reference, probabilities, names)
    same_class = probabilities.argmax(axis=1) == reference.argmax(axis=1)
    maps = compare_maps(reference_maps, outputs[CAM_NAME], names, same_class)
    return KernelCheck(path, arithmetic, emulated, agreement, maps)
