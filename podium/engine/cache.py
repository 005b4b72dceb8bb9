"""Built TensorRT engines and timing caches, kept across builds under a key.

A plan only runs on the GPU model and TensorRT version that built it, so the key is
(ONNX sha256, GPU name, compute capability, TensorRT version, build recipe). Timing caches
depend on the GPU and TensorRT only, and are shared by every model built there.

Layout::

    CACHE/engines/<key digest>/model.plan, engine.json
    CACHE/timing/<environment digest>.cache
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from podium.engine.errors import EngineBuildError
from podium.stores.modelrepo.files import replace_bytes
from podium.stores.modelrepo.layout import ENGINE_INFO_FILENAME, PLAN_FILENAME


@dataclass(frozen=True)
class BuildEnvironment:
    """Where an engine is built, and so the only place where it runs."""

    gpu_name: str
    compute_capability: str  # "8.0", "9.0", ...
    tensorrt_version: str

    def digest(self) -> str:
        return _digest(asdict(self))


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    recipe_sha256: str

    @classmethod
    def of(cls, onnx_sha256: str, environment: BuildEnvironment, recipe_sha256: str) -> EngineKey:
        return cls(
            onnx_sha256,
            environment.gpu_name,
            environment.compute_capability,
            environment.tensorrt_version,
            recipe_sha256,
        )

    def digest(self) -> str:
        return _digest(asdict(self))

    def as_dict(self) -> dict[str, str]:
        return asdict(self) | {"digest": self.digest()}


@dataclass(frozen=True)
class CachedEngine:
    plan: bytes
    info: dict  # engine.json: the key and the fidelity report the engine passed with


class EngineCache:
    """A folder of engines keyed by EngineKey; writes are atomic (temporary folder, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    def get(self, key: EngineKey) -> CachedEngine | None:
        entry = self._entry(key)
        try:
            info = json.loads((entry / ENGINE_INFO_FILENAME).read_text(encoding="utf-8"))
            plan = (entry / PLAN_FILENAME).read_bytes()
        except (OSError, ValueError):
            return None  # absent or half-deleted: build again
        return CachedEngine(plan, info) if info.get("key") == key.as_dict() else None

    def put(self, key: EngineKey, plan: bytes, info: dict) -> Path:
        entry = self._entry(key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        try:
            (staging / PLAN_FILENAME).write_bytes(plan)
            (staging / ENGINE_INFO_FILENAME).write_text(json.dumps(info | {"key": key.as_dict()}, indent=2) + "\n")
            shutil.rmtree(entry, ignore_errors=True)
            os.rename(staging, entry)
        except OSError as exc:
            raise EngineBuildError(f"cannot write the engine cache at {entry}: {exc}; pass --cache-dir DIR") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return entry

    def read_timing_cache(self, environment: BuildEnvironment) -> bytes | None:
        try:
            return self._timing_path(environment).read_bytes()
        except OSError:
            return None

    def write_timing_cache(self, environment: BuildEnvironment, data: bytes) -> None:
        path = self._timing_path(environment)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_bytes(path, data)

    def _entry(self, key: EngineKey) -> Path:
        return self.root / "engines" / key.digest()

    def _timing_path(self, environment: BuildEnvironment) -> Path:
        return self.root / "timing" / f"{environment.digest()}.cache"


def _digest(fields: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
