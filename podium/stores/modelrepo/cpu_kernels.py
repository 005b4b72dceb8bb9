"""Which onnxruntime INT8 kernels a CPU gets, and the integer arithmetic they do.

onnxruntime's MLAS picks its uint8 x int8 matrix kernels from the CPU's instruction sets
alone (cpuid; no session option or environment variable chooses them):

- AMX, AVX-512 VNNI and AVX-VNNI multiply-accumulate straight into int32: exact;
- AVX-512 without VNNI and AVX2 use VPMADDUBSW, which adds two u8 x s8 products into a
  *saturating int16* first. With 8-bit weights 2 x 255 x 127 overflows it; with 7-bit
  weights (``reduce_range``) 2 x 255 x 63 = 32,130 cannot, and both give the same integers.

An INT8 model is verified on the arithmetic it was measured with (its fidelity.json lists
them); ``triton_python_model.py`` repeats this table, as it may import nothing of Podium
(a unit test keeps the two equal).
"""

from __future__ import annotations

from pathlib import Path

EXACT_INT32 = "int32"
SATURATING_INT16_PAIRS = "int16-pairs"
UNKNOWN = "unknown"

# (path, flags of /proc/cpuinfo it needs, arithmetic), in MLAS's order of preference.
KERNEL_PATHS: tuple[tuple[str, frozenset[str], str], ...] = (
    ("amx", frozenset({"amx_tile", "amx_int8", "avx512_vnni"}), EXACT_INT32),
    ("avx512-vnni", frozenset({"avx512_vnni", "avx512bw"}), EXACT_INT32),
    ("avx-vnni", frozenset({"avx_vnni", "avx2", "fma"}), EXACT_INT32),
    ("avx512", frozenset({"avx512bw", "avx512f"}), SATURATING_INT16_PAIRS),
    ("avx2", frozenset({"avx2", "fma"}), SATURATING_INT16_PAIRS),
)
# The flags that decide the path: what a fidelity report records of the CPU.
DECIDING_FLAGS = sorted(set().union(*(flags for _, flags, _ in KERNEL_PATHS)))
_CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = _CPUINFO) -> frozenset[str]:
    """The instruction-set flags of this CPU (Linux); empty where /proc/cpuinfo is not."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def kernel_path(flags: frozenset[str]) -> str:
    """The INT8 kernel path onnxruntime takes on a CPU with ``flags``: e.g. "avx512-vnni"."""
    for path, needed, _ in KERNEL_PATHS:
        if needed <= flags:
            return path
    return "sse" if flags else UNKNOWN


def arithmetic(path: str) -> str:
    """EXACT_INT32, SATURATING_INT16_PAIRS or UNKNOWN for a kernel path."""
    return next((kind for name, _, kind in KERNEL_PATHS if name == path), UNKNOWN)


def this_cpu(flags: frozenset[str] | None = None) -> dict:
    """What a fidelity report records of the CPU a check ran on."""
    flags = cpu_flags() if flags is None else flags
    path = kernel_path(flags)
    return {
        "kernel_path": path,
        "arithmetic": arithmetic(path),
        "flags": [flag for flag in DECIDING_FLAGS if flag in flags],
    }


def verified_arithmetic(fidelity: dict) -> list[str]:
    """The kernel arithmetic an INT8 version was measured with; [] for older reports."""
    return sorted({check["arithmetic"] for check in fidelity.get("kernel_checks", [])})
