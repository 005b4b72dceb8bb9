"""TritonClassifier: uint8 pixels in, probabilities out, over Triton's gRPC API.

tritonclient's errors are converted here, at the edge: ``TritonUnavailable`` for
anything worth retrying (server down, restarting, model not ready, time-out), and
``TritonError`` for a request Triton refused.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from podium.core.errors import FailedPrecondition, Internal, NotFound, Status, Unavailable
from podium.core.jobs import Prediction
from podium.core.jobs.model import PROBABILITY_DIGITS
from podium.core.modelmeta import METADATA_PARAMETER, ModelMetadata, fingerprint
from podium.stores.inference.shared_memory import SharedMemorySlots, Slot

DEFAULT_TIMEOUT_S = 30.0
_RETRYABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "CANCELLED", "ABORTED")
# Triton's words for states that pass: a model not ready yet, a Python-backend stub restarting,
# a request whose stub died under it (its answer lost with it, or garbled: an output without a
# name, seen in CI after a freeze; the image is not at fault).
_RETRYABLE_MESSAGES = (
    "not ready",
    "unavailable",
    "is not healthy",
    "exceeds maximum queue size",
    "timeout",
    "failed to retrieve the response",
    "unexpected inference output ''",
)


class TritonError(Internal):
    """Triton refused a request."""


class ModelNotFound(TritonError, NotFound):
    """Triton serves no such model, or not that version."""

    status = Status.NOT_FOUND


class NoActivationMaps(TritonError, FailedPrecondition):
    """The model was exported before activation maps existed: it cannot explain its answers."""

    status = Status.FAILED_PRECONDITION


class TritonUnavailable(TritonError, Unavailable):
    """Triton cannot answer now (down, starting, overloaded, timed out); try again later."""

    status = Status.UNAVAILABLE
    hint = (
        "the gateway is up but Triton (PODIUM_TRITON_URL) is not answering: is tritonserver running and its "
        "model loaded? Jobs wait for it; try again then"
    )


def _convert(exc: InferenceServerException, what: str) -> TritonError:
    status = str(exc.status() or "")
    message = f"{what}: {exc.message() or status}"
    # A model Triton knows but has not loaded yet (as after a restart) is "Request for unknown
    # model: 'm' version 1 is not at ready state", status UNAVAILABLE: it passes.
    if "not at ready state" in message.lower():
        return TritonUnavailable(message)
    if "NOT_FOUND" in status or "unknown model" in message.lower():
        return ModelNotFound(message, hint="`podium classes --model NAME` lists a model; `podium models` the versions")
    if any(code in status for code in _RETRYABLE) or any(sign in message.lower() for sign in _RETRYABLE_MESSAGES):
        return TritonUnavailable(message)
    return TritonError(message)


@dataclass(frozen=True)
class Inference:
    """What the model answered for a batch: probabilities, and the top-1 maps when asked."""

    probabilities: np.ndarray  # float32 [N, classes]
    maps: np.ndarray | None = None  # float32 [N, h, w], ReLU'd, each scaled to a maximum of 1


class TritonClassifier:
    """A client of one classification model in Triton. Create it after fork, never before."""

    def __init__(
        self,
        url: str,
        model_name: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        version: str = "",
        shared: SharedMemorySlots | None = None,
    ) -> None:
        self.url = url
        self.shared = shared  # the process's shared-memory regions (a Triton on this machine)
        self.model_name = model_name
        self.version = version  # "": Triton's choice (the newest it serves)
        self.timeout_s = timeout_s
        self._client = grpcclient.InferenceServerClient(url)
        self._metadata: ModelMetadata | None = None
        self._max_batch_size = 0  # from the model's config; 0: Triton does not batch it
        # Row tags: a random 62-bit start per client, then consecutive, so that no two
        # requests in flight at one Triton, from any worker, carry the same tag.
        self._next_tag = secrets.randbits(62)
        self._tags_lock = threading.Lock()

    @property
    def what(self) -> str:
        return f"model {self.model_name!r}" + (f" version {self.version}" if self.version else "")

    def served_version(self) -> str:
        """The version that answers: the pinned one if it is ready, else the newest Triton serves."""
        try:
            if self.version:
                if not self._client.is_model_ready(self.model_name, self.version, client_timeout=self.timeout_s):
                    raise ModelNotFound(f"{self.what} is not served (not in the repository, or not loaded)")
                return self.version
            answer = self._client.get_model_metadata(self.model_name, as_json=True, client_timeout=self.timeout_s)
        except InferenceServerException as exc:
            raise _convert(exc, f"looking up {self.what}") from exc
        versions = [v for v in answer.get("versions", []) if str(v).isdigit()]
        if not versions:
            raise ModelNotFound(f"{self.what} has no version ready in Triton")
        return max(versions, key=int)

    def close(self) -> None:
        self._client.close()

    def metadata(self) -> ModelMetadata:
        """The model's Podium metadata, read once from its config in Triton."""
        if self._metadata is None:
            try:
                config = self._client.get_model_config(
                    self.model_name, self.version, as_json=True, client_timeout=self.timeout_s
                )
            except InferenceServerException as exc:
                raise _convert(exc, f"reading the config of {self.what}") from exc
            parameters = config.get("config", {}).get("parameters", {})
            if METADATA_PARAMETER not in parameters:
                raise TritonError(
                    f"model {self.model_name!r} has no {METADATA_PARAMETER!r} parameter: export it with `podium export`"
                )
            self._max_batch_size = int(config.get("config", {}).get("max_batch_size", 0) or 0)
            self._metadata = ModelMetadata.model_validate(json.loads(parameters[METADATA_PARAMETER]["string_value"]))
        return self._metadata

    def request_size(self, wanted: int) -> int:
        """Images per request for ``wanted``: at most the model's ``max_batch_size``, which Triton
        enforces by refusing the whole request."""
        self.metadata()
        limit = self._max_batch_size
        return max(1, min(wanted, limit) if limit > 0 else wanted)

    def infer_encoded(self, data: bytes, explain: bool = False) -> Inference:
        """One encoded file, for a model that decodes it on the server (gpu-dali's ensemble):
        uint8 [1, len(data)]. A file the server cannot decode fails this request alone."""
        return self.infer(np.frombuffer(data, dtype=np.uint8)[None], explain=explain)

    def infer(self, pixels: np.ndarray | Sequence[np.ndarray], explain: bool = False) -> Inference:
        """uint8 [N, crop, crop, 3] (or, for a model taking encoded files, [1, bytes]) -> probabilities,
        and with ``explain`` the activation maps. ``pixels`` may also be N arrays of one shape,
        each an image: to a local Triton they go into shared memory one by one, with no stacked
        copy first (a request of 32 224x224 images: ~0.5 CPU-ms less).

        A map is requested from Triton only when asked for, so plain jobs do not pay for it.
        """
        meta = self.metadata()
        if explain and not meta.cam_name:
            raise NoActivationMaps(
                f"{self.what} was exported without activation maps",
                hint="export the checkpoint again with `podium export` (versions since maps exist have them)",
            )
        pixels = request_rows(pixels)
        size = self.request_size(len(pixels))
        if len(pixels) > size:  # more than the model takes at once: in parts, answered as one
            parts = [self.infer(pixels[i : i + size], explain) for i in range(0, len(pixels), size)]
            maps = np.concatenate([part.maps for part in parts]) if explain else None
            return Inference(np.concatenate([part.probabilities for part in parts]), maps)
        with self._slot_for(rows_nbytes(pixels)) as slot:
            return self._infer(meta, pixels, explain, slot)

    def _infer(
        self, meta: ModelMetadata, pixels: np.ndarray | list[np.ndarray], explain: bool, slot: Slot | None
    ) -> Inference:
        tensor = grpcclient.InferInput(meta.input_name, list(rows_shape(pixels)), "UINT8")
        if slot is None:
            tensor.set_data_from_numpy(rows_array(pixels))
        else:
            slot.write(pixels)
            tensor.set_shared_memory(slot.name, rows_nbytes(pixels))
        inputs = [tensor]
        names = [meta.output_name, *([meta.cam_name] if explain else [])]
        tags = None
        if meta.row_tag_name:
            tags = self._row_tags(len(pixels))
            tagged = grpcclient.InferInput(meta.row_tag_name, list(tags.shape), "INT64")
            tagged.set_data_from_numpy(tags)
            inputs.append(tagged)
            names.append(meta.row_tag_echo_name)
        elif meta.fingerprint_name:  # a version exported before row tags
            names.append(meta.fingerprint_name)
        outputs = [grpcclient.InferRequestedOutput(name) for name in names]
        result = self._send(inputs, outputs, slot is not None)
        if tags is not None:
            check_row_tags(tags, result.as_numpy(meta.row_tag_echo_name), self.model_name)
        elif meta.fingerprint_name:
            check_fingerprint(rows_array(pixels), result.as_numpy(meta.fingerprint_name), self.model_name)
        return Inference(result.as_numpy(meta.output_name), result.as_numpy(meta.cam_name) if explain else None)

    def _send(self, inputs: list, outputs: list, in_shared_memory: bool) -> grpcclient.InferResult:
        for attempt in (1, 2):
            try:
                return self._client.infer(
                    self.model_name, inputs, model_version=self.version, outputs=outputs, client_timeout=self.timeout_s
                )
            except InferenceServerException as exc:
                if in_shared_memory and attempt == 1 and self.shared.forgotten(exc):
                    self._shared_call(self.shared.register_again)  # Triton restarted: its regions are new to it
                    continue
                raise _convert(exc, f"inference on {self.what}") from exc
        raise AssertionError("unreachable")

    @contextmanager
    def _slot_for(self, nbytes: int) -> Iterator[Slot | None]:
        """A shared-memory slot for a request's ``nbytes`` of pixels until its response is in, or None (the wire)."""
        slot = None if self.shared is None else self._shared_call(lambda: self.shared.take(nbytes))
        try:
            yield slot
        finally:
            if slot is not None:
                self.shared.give_back(slot)

    def _shared_call(self, call):
        try:
            return call()
        except InferenceServerException as exc:
            raise _convert(exc, f"registering shared memory with Triton for {self.what}") from exc

    def _row_tags(self, rows: int) -> np.ndarray:
        """int64 [rows, 1]: tags no other request of this client carries."""
        with self._tags_lock:
            first, self._next_tag = self._next_tag, self._next_tag + rows
        return np.arange(first, first + rows, dtype=np.int64)[:, None]


def request_rows(pixels: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """A request's images as one contiguous uint8 array, or as a list of uint8 arrays of one
    shape (left unstacked); ValueError for images of different shapes."""
    if isinstance(pixels, np.ndarray):
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    rows = [np.asarray(row) for row in pixels]
    if not rows:
        raise ValueError("a request needs at least one image")
    if any(row.shape != rows[0].shape for row in rows):
        raise ValueError(f"a request's images must share one shape, not {sorted({row.shape for row in rows})}")
    if any(row.dtype != np.uint8 for row in rows):
        return np.ascontiguousarray(np.stack(rows), dtype=np.uint8)
    return rows


def rows_array(pixels: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """``request_rows``'s answer as one array (stacked only if it is a list)."""
    return pixels if isinstance(pixels, np.ndarray) else np.stack(pixels)


def rows_shape(pixels: np.ndarray | list[np.ndarray]) -> tuple[int, ...]:
    return pixels.shape if isinstance(pixels, np.ndarray) else (len(pixels), *pixels[0].shape)


def rows_nbytes(pixels: np.ndarray | list[np.ndarray]) -> int:
    return pixels.nbytes if isinstance(pixels, np.ndarray) else len(pixels) * pixels[0].nbytes


def check_row_tags(sent: np.ndarray, returned: np.ndarray | None, model_name: str) -> None:
    """TritonUnavailable (so the request is sent again) unless the response echoes this request's tags."""
    if returned is None or not np.array_equal(returned.reshape(sent.shape), sent):
        raise TritonUnavailable(
            f"inference on model {model_name!r}: Triton answered with another request's response "
            "(its row tags differ); asking again"
        )


def check_fingerprint(pixels: np.ndarray, returned: np.ndarray | None, model_name: str) -> None:
    """TritonUnavailable (so the request is sent again) unless the response is this request's."""
    if returned is None or not np.array_equal(returned, fingerprint(pixels)):
        raise TritonUnavailable(
            f"inference on model {model_name!r}: Triton answered with another request's response "
            "(its pixel fingerprint differs); asking again"
        )


def top_k(probabilities: np.ndarray, k: int, classes: list[str]) -> tuple[Prediction, ...]:
    """The k most probable classes of one probability vector, most probable first."""
    return top_k_rows(probabilities[None], k, classes)[0]


def top_k_rows(probabilities: np.ndarray, k: int, classes: list[str]) -> list[tuple[Prediction, ...]]:
    """``top_k`` of each row of a request's answer, sorted in one numpy call for all rows (a
    row at a time cost ~15 µs an image); ties go to the lower class index. Probabilities come
    rounded to the digits a record keeps, so that recording them changes nothing."""
    k = max(1, min(k, probabilities.shape[-1]))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(probabilities, order, axis=1).astype(np.float64)
    values = np.round(chosen, PROBABILITY_DIGITS).tolist()
    return [
        tuple(Prediction(classes[i], i, p) for i, p in zip(indexes, row, strict=True))
        for indexes, row in zip(order.tolist(), values, strict=True)
    ]
