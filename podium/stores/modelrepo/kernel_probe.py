"""Run an INT8 model on the other x86 kernel arithmetic: as an AVX2 CPU, under qemu.

No onnxruntime setting selects its INT8 kernels (``podium.stores.modelrepo.cpu_kernels``), so a machine
with VNNI cannot run the saturating AVX2 ones natively. qemu's user-mode emulator can:
its CPU model ("max" under TCG) has AVX2 and FMA but no AVX-512 or VNNI, so onnxruntime
inside it takes the AVX2 path. It is ~150 times slower than native: the check runs on the
held-out images only. Each run also multiplies a probe whose exact result overflows the
saturating path, so the report says which arithmetic ran rather than assuming it.

``python -m podium.stores.modelrepo.kernel_probe MODEL PIXELS OUT`` is the child that runs under qemu.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from podium.stores.modelrepo.cpu_kernels import EXACT_INT32, SATURATING_INT16_PAIRS, UNKNOWN
from podium.stores.modelrepo.errors import ModelRepositoryError
from podium.stores.modelrepo.fidelity import run_batched_outputs
from podium.stores.modelrepo.onnx_session import onnx_outputs_runner

QEMU = "qemu-x86_64"
QEMU_CPU = "max"
EMULATED_PATH = "avx2"
_PROBE_DEPTH = 64  # 32 pairs of 255 x 127: 2,072,640 exact; 32 x 32,767 when pair sums saturate
_EXACT = 255 * 127 * _PROBE_DEPTH
_SATURATED = (_PROBE_DEPTH // 2) * 32767


def emulator() -> str | None:
    """The qemu user-mode emulator's path on an x86-64 machine that has it, else None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    return shutil.which(QEMU)


def observed_arithmetic() -> str:
    """The INT8 arithmetic onnxruntime's kernels do on this CPU (or emulated CPU), measured."""
    import onnxruntime as ort

    session = ort.InferenceSession(_probe_model(), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {"a": np.full((1, _PROBE_DEPTH), 255, np.uint8)})
    value = int(result.ravel()[0])
    return {_EXACT: EXACT_INT32, _SATURATED: SATURATING_INT16_PAIRS}.get(value, UNKNOWN)


def run_emulated(onnx_path: Path, pixels: np.ndarray, *, timeout_s: float) -> tuple[dict[str, np.ndarray], str]:
    """Every output of ``onnx_path`` on ``pixels``, computed under qemu as an AVX2 CPU, and
    the arithmetic the probe saw there; ModelRepositoryError if qemu is missing or fails."""
    qemu = emulator()
    if qemu is None:
        raise ModelRepositoryError(f"{QEMU} is not installed: `apt-get install qemu-user` (Debian) provides it")
    with tempfile.TemporaryDirectory(prefix="podium-qemu-") as workdir:
        inputs, outputs = Path(workdir) / "pixels.npy", Path(workdir) / "outputs.npz"
        np.save(inputs, pixels)
        command = [qemu, "-cpu", QEMU_CPU, sys.executable, "-m", __name__, str(onnx_path), str(inputs), str(outputs)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ModelRepositoryError(f"the emulated AVX2 run took over {timeout_s:.0f} s") from exc
        if done.returncode != 0:
            raise ModelRepositoryError(f"the emulated AVX2 run failed: {done.stderr.strip()[-500:]}")
        with np.load(outputs) as saved:
            found = {name: saved[name] for name in saved.files}
    return found, str(found.pop("__arithmetic__"))


def _probe_model() -> bytes:
    """MatMulInteger of a uint8 row of 255s by an int8 column of 127s."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.full((_PROBE_DEPTH, 1), 127, np.int8), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "saturation_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, _PROBE_DEPTH])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=9)
    return model.SerializeToString()


def main(argv: list[str]) -> None:
    """The emulated child: run the model on the pixels in batches, save every output."""
    onnx_path, inputs, outputs = argv
    pixels = np.load(inputs)
    found = run_batched_outputs(onnx_outputs_runner(Path(onnx_path)), pixels)
    np.savez(outputs, __arithmetic__=np.array(observed_arithmetic()), **found)


if __name__ == "__main__":
    main(sys.argv[1:])
