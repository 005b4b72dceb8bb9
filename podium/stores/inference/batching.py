"""BatchingClassifier: a worker's concurrent one-image inferences sent as one Triton request.

Each of a worker's threads decodes its own image and asks for one inference; this gathers
up to ``images_per_request`` of those asks (waiting at most ``max_wait_s`` for more) into
one request, so that a GPU-sized flow costs one gRPC round trip and one protobuf per N
images instead of per image. Triton's dynamic batcher then merges requests into GPU
batches as before. Only decoded pixels reach it: a bad image fails in its own thread,
before it asks. A failed request fails each of its images alike (what they would have
got alone), and every image still gets its own answer.

The thread whose ask fills the batch sends it; otherwise the batch's first thread sends
what has gathered when its wait ends. Maps (explain) and plain asks are batched apart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from podium.stores.inference.triton import Inference, TritonClassifier

DEFAULT_MAX_WAIT_S = 0.002


@dataclass
class _Ask:
    pixels: np.ndarray  # [1, H, W, 3]
    answered: threading.Event = field(default_factory=threading.Event)
    taken: threading.Event = field(default_factory=threading.Event)
    result: Inference | None = None
    error: BaseException | None = None


class BatchingClassifier:
    """Has TritonClassifier's interface; ``infer`` of one image may ride in a shared request."""

    def __init__(
        self, inner: TritonClassifier, images_per_request: int, max_wait_s: float = DEFAULT_MAX_WAIT_S
    ) -> None:
        self.inner = inner
        self.images_per_request = images_per_request
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._gathering: dict[bool, list[_Ask]] = {False: [], True: []}

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # metadata(), served_version(), close(), model_name, ...

    def infer(self, pixels: np.ndarray, explain: bool = False) -> Inference:
        if len(pixels) != 1 or self.images_per_request <= 1:
            return self.inner.infer(pixels, explain=explain)
        size = self.inner.request_size(self.images_per_request)  # may ask Triton: before the lock
        ask = _Ask(pixels)
        with self._lock:
            gathering = self._gathering[explain]
            gathering.append(ask)
            first = len(gathering) == 1
            batch = self._take(explain) if len(gathering) >= size else None
        if batch is None and first and not ask.taken.wait(self.max_wait_s):
            with self._lock:
                batch = self._take(explain) if not ask.taken.is_set() else None
        if batch is not None:
            self._send(batch, explain)
        ask.answered.wait()
        if ask.error is not None:
            raise ask.error
        assert ask.result is not None
        return ask.result

    def _take(self, explain: bool) -> list[_Ask]:
        """The asks gathered so far (under the lock): they are this batch."""
        batch, self._gathering[explain] = self._gathering[explain], []
        for ask in batch:
            ask.taken.set()
        return batch

    def _send(self, batch: list[_Ask], explain: bool) -> None:
        try:
            answer = self.inner.infer(np.concatenate([ask.pixels for ask in batch]), explain=explain)
            for row, ask in enumerate(batch):
                maps = None if answer.maps is None else answer.maps[row : row + 1]
                ask.result = Inference(answer.probabilities[row : row + 1], maps)
        except BaseException as exc:  # noqa: BLE001 - every image of the request hears it
            for ask in batch:
                ask.error = exc
        finally:
            for ask in batch:
                ask.answered.set()
