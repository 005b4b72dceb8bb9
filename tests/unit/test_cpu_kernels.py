"""Which INT8 kernels a CPU gets: the table, /proc/cpuinfo, the measured probe, the served model's warning."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from podium.stores.modelrepo import cpu_kernels
from podium.stores.modelrepo.cpu_kernels import EXACT_INT32, SATURATING_INT16_PAIRS, UNKNOWN, kernel_path, this_cpu
from podium.stores.modelrepo.kernel_probe import observed_arithmetic

# cpuinfo flags of CPUs seen here and elsewhere, cut to what decides the path.
AVX2_EPYC = "sse4_1 sse4_2 avx fma avx2 sha_ni"  # Zen 2/3: AVX2, no AVX-512
ZEN4 = "avx fma avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16"
SAPPHIRE_RAPIDS = ZEN4 + " amx_bf16 amx_tile amx_int8"
SKYLAKE_SP = "avx fma avx2 avx512f avx512dq avx512bw avx512vl"  # AVX-512 without VNNI
ALDER_LAKE = "avx fma avx2 avx_vnni"
NEHALEM = "sse4_1 sse4_2"


@pytest.mark.parametrize(
    ("flags", "path", "arithmetic"),
    [
        (AVX2_EPYC, "avx2", SATURATING_INT16_PAIRS),
        (SKYLAKE_SP, "avx512", SATURATING_INT16_PAIRS),
        (ZEN4, "avx512-vnni", EXACT_INT32),
        (SAPPHIRE_RAPIDS, "amx", EXACT_INT32),
        (ALDER_LAKE, "avx-vnni", EXACT_INT32),
        (NEHALEM, "sse", UNKNOWN),
        ("", UNKNOWN, UNKNOWN),
    ],
)
def test_kernel_path_follows_onnxruntimes_order(flags: str, path: str, arithmetic: str):
    found = this_cpu(frozenset(flags.split()))
    assert (found["kernel_path"], found["arithmetic"]) == (path, arithmetic)
    assert set(found["flags"]) <= set(flags.split()) and set(found["flags"]) <= set(cpu_kernels.DECIDING_FLAGS)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {AVX2_EPYC}\n\nprocessor\t: 1\n")
    assert kernel_path(cpu_kernels.cpu_flags(cpuinfo)) == "avx2"
    assert cpu_kernels.cpu_flags(tmp_path / "absent") == frozenset()


def test_the_probe_measures_the_arithmetic_the_flags_predict():
    """onnxruntime in this process: exact on VNNI/AMX, saturating on AVX2 (the probe overflows it)."""
    predicted = this_cpu()["arithmetic"]
    assert predicted in (EXACT_INT32, SATURATING_INT16_PAIRS), f"a CPU this suite does not know: {this_cpu()}"
    assert observed_arithmetic() == predicted


def test_verified_arithmetic_of_a_report():
    report = {"kernel_checks": [{"arithmetic": EXACT_INT32}, {"arithmetic": SATURATING_INT16_PAIRS}]}
    assert cpu_kernels.verified_arithmetic(report) == [SATURATING_INT16_PAIRS, EXACT_INT32]
    assert cpu_kernels.verified_arithmetic({}) == []


def test_served_model_repeats_the_table(backend_module: types.ModuleType):
    assert backend_module.KERNEL_PATHS == cpu_kernels.KERNEL_PATHS
    assert backend_module.FIDELITY_FILENAME == "fidelity.json"


@pytest.fixture
def backend_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    from tests.unit.test_modelrepo_python_model import load_backend_module

    return load_backend_module(monkeypatch)


def _version(tmp_path: Path, checks: list[dict] | None, cpu: str) -> tuple[Path, Path]:
    version = tmp_path / "1"
    version.mkdir()
    if checks is not None:
        (version / "fidelity.json").write_text(json.dumps({"target": "cpu-int8", "kernel_checks": checks}))
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"flags\t: {cpu}\n")
    return version, cpuinfo


VNNI_CHECK = {"kernel_path": "avx512-vnni", "arithmetic": EXACT_INT32, "emulated": False}
AVX2_CHECK = {"kernel_path": "avx2", "arithmetic": SATURATING_INT16_PAIRS, "emulated": True}


@pytest.mark.parametrize(
    ("checks", "cpu", "warns"),
    [
        ([VNNI_CHECK, AVX2_CHECK], AVX2_EPYC, False),
        ([VNNI_CHECK, AVX2_CHECK], SAPPHIRE_RAPIDS, False),  # AMX adds exactly, as VNNI does
        ([VNNI_CHECK], AVX2_EPYC, True),
        ([VNNI_CHECK], SKYLAKE_SP, True),
        ([AVX2_CHECK], ZEN4, True),
        ([VNNI_CHECK, AVX2_CHECK], NEHALEM, True),
        (None, AVX2_EPYC, False),  # an FP32 version: no INT8 kernels to check
        ([], AVX2_EPYC, False),
    ],
)
def test_served_model_warns_on_a_cpu_its_export_did_not_check(
    backend_module: types.ModuleType, tmp_path: Path, checks: list[dict] | None, cpu: str, warns: bool
):
    version, cpuinfo = _version(tmp_path, checks, cpu)
    warning = backend_module.kernel_warning(str(version), str(cpuinfo))
    assert (warning is not None) == warns
    if warns:
        assert "Export it again on this kind of CPU" in warning and str(version) in warning
