"""The Triton model repository: its layout, versions, config.pbtxt, writes, sessions and checks.

Everything that reads or writes a model repository (export, build-engine, ``podium
models``, bench, demo, the local cluster) goes through this package, so the layout is
known in one place (``podium.stores.modelrepo.layout``). The package imports neither torch nor Redis:
the engine-builder image, which has no PyTorch, uses it too.
"""

from podium.stores.modelrepo.config import (
    build_model_config,
    parse_model_config,
    read_model_config,
    render_model_config,
)
from podium.stores.modelrepo.errors import ModelRepositoryError
from podium.stores.modelrepo.fidelity import (
    Agreement,
    FidelityError,
    MapAgreement,
    compare,
    compare_maps,
    map_correlations,
    require_agreement,
    require_decisive_agreement,
    run_batched,
    run_batched_outputs,
)
from podium.stores.modelrepo.layout import installed_versions, model_dirs, newest_version, pending_versions, version_dir
from podium.stores.modelrepo.listing import VersionSummary, list_models
from podium.stores.modelrepo.onnx_session import OutputsRunner, Runner, onnx_outputs_runner, onnx_runner, onnx_session
from podium.stores.modelrepo.recipe import BuildRecipe, EngineSettings
from podium.stores.modelrepo.targets import TARGETS, Target, resolve_target
from podium.stores.modelrepo.writer import WrittenModel, promote_pending_version, write_model_version

__all__ = [
    "TARGETS",
    "Agreement",
    "BuildRecipe",
    "EngineSettings",
    "FidelityError",
    "MapAgreement",
    "ModelRepositoryError",
    "OutputsRunner",
    "Runner",
    "Target",
    "VersionSummary",
    "WrittenModel",
    "build_model_config",
    "compare",
    "compare_maps",
    "cpu_kernels",
    "fidelity",
    "files",
    "gpu_decode",
    "installed_versions",
    "kernel_probe",
    "layout",
    "list_models",
    "map_correlations",
    "model_dirs",
    "newest_version",
    "onnx_outputs_runner",
    "onnx_runner",
    "onnx_session",
    "parse_model_config",
    "pending_versions",
    "promote_pending_version",
    "read_model_config",
    "recipe",
    "render_model_config",
    "require_agreement",
    "require_decisive_agreement",
    "resolve_target",
    "run_batched",
    "run_batched_outputs",
    "targets",
    "version_dir",
    "write_model_version",
]
