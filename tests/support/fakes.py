"""Fakes for the unit tier: they stand in for Celery, Triton and a gRPC context, in memory.

The Redis side needs none: the real JobStore runs on fakeredis (its Lua scripts too).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import fakeredis
import grpc
import numpy as np
from PIL import Image

from podium.core.modelmeta import ModelMetadata, ModelRef
from podium.stores.inference import Inference, ModelNotFound, NoActivationMaps, TritonUnavailable
from podium.stores.jobstore import ChunkQueue, JobStore

CLASSES = ["archery", "badminton", "curling"]


class FakeRedis(fakeredis.FakeRedis):
    """fakeredis, plus the INFO memory section the store reads (no maxmemory: unlimited)."""

    used_memory = 0
    maxmemory = 0

    def info(self, section=None, *args, **kwargs):
        if section == "memory":
            return {"used_memory": self.used_memory, "maxmemory": self.maxmemory}
        return super().info(section, *args, **kwargs)


def fake_store(ttl_s: int = 3600) -> JobStore:
    return JobStore(FakeRedis(), result_ttl_s=ttl_s)


class FakeQueue(ChunkQueue):
    """The real ChunkQueue without Celery: chunks the store lets out are recorded, not sent."""

    def __init__(self, store: JobStore, max_queued_chunks: int = 2) -> None:
        super().__init__(store, celery=None, max_queued_chunks=max_queued_chunks)
        self.sent: list[tuple[str, int]] = []

    def send(self, job_id: str, chunk: int) -> None:
        self.sent.append((job_id, chunk))


@dataclass
class FakeClassifier:
    """TritonClassifier without Triton: the mean pixel decides the class, deterministically.

    ``down`` makes every call raise TritonUnavailable, as a stopped Triton would."""

    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    down: bool = False
    maps: bool = True  # exported with activation maps
    batches: list[int] = field(default_factory=list)
    max_batch_size: int = 0  # as the model's config says; 0: no limit

    version: str = "1"

    def served_version(self) -> str:
        self._check()
        return self.version

    def metadata(self) -> ModelMetadata:
        self._check()
        return ModelMetadata(model_name="fake", target="cpu", classes=self.classes, cam_name="cam" if self.maps else "")

    def request_size(self, wanted: int) -> int:
        self._check()  # the real one reads the model's config from Triton once
        return max(1, min(wanted, self.max_batch_size) if self.max_batch_size else wanted)

    def infer(self, pixels: np.ndarray, explain: bool = False) -> Inference:
        self._check()
        if self.max_batch_size and len(pixels) > self.max_batch_size:
            raise AssertionError(f"a request of {len(pixels)} images to a model that takes {self.max_batch_size}")
        if explain and not self.maps:
            raise NoActivationMaps("model 'fake' was exported without activation maps")
        self.batches.append(len(pixels))
        probabilities = np.stack([self.probabilities(image) for image in pixels])
        return Inference(probabilities, np.stack([self.activation(image) for image in pixels]) if explain else None)

    @staticmethod
    def activation(image: np.ndarray) -> np.ndarray:
        """The image's brightness in 7 x 7 cells, scaled to a maximum of 1: a map one can predict."""
        side = image.shape[0] // 7
        cells = image[: side * 7, : side * 7].reshape(7, side, 7, side, -1).mean(axis=(1, 3, 4))
        return (cells / cells.max() if cells.max() > 0 else cells).astype(np.float32)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        winner = int(image.mean()) * len(self.classes) // 256
        scores = np.full(len(self.classes), 0.1, dtype=np.float32)
        scores[winner] = 1.0
        return scores / scores.sum()

    def close(self) -> None:
        pass

    def _check(self) -> None:
        if self.down:
            raise TritonUnavailable("inference on model 'fake': connection refused")


def png_bytes(grey: int, size: int = 64) -> bytes:
    """A small grey PNG: FakeClassifier gives it class grey * len(CLASSES) // 256."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (grey, grey, grey)).save(buffer, format="PNG")
    return buffer.getvalue()


def pool(threads: int = 2) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="fake-infer")


class Aborted(Exception):
    """What FakeContext.abort raises, as grpc's abort raises to end the handler."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code, self.details = code, details


@dataclass
class FakeContext:
    """The part of grpc.ServicerContext that Podium's handlers and interceptors use."""

    metadata: tuple = ()
    active: bool = True
    _code: grpc.StatusCode | None = None
    trailers: tuple = ()

    def set_trailing_metadata(self, metadata: tuple) -> None:
        self.trailers = tuple(metadata)

    def abort(self, code: grpc.StatusCode, details: str):
        self._code = code
        raise Aborted(code, details)

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def is_active(self) -> bool:
        return self.active

    def invocation_metadata(self) -> tuple:
        return self.metadata


@dataclass
class FakeClassifiers:
    """podium.stores.inference.Classifiers over fakes: the models it knows by name; any other is not found."""

    models: dict[str, FakeClassifier] = field(default_factory=lambda: {"resnet50_sports": FakeClassifier()})

    def get(self, ref: ModelRef) -> FakeClassifier:
        if ref.name not in self.models or (ref.version and ref.version != self.models[ref.name].version):
            return _Missing(str(ref))  # type: ignore[return-value]
        return self.models[ref.name]

    def close(self) -> None:
        pass


@dataclass
class _Missing:
    ref: str

    def served_version(self) -> str:
        raise ModelNotFound(f"model {self.ref!r} is not served")

    metadata = served_version
