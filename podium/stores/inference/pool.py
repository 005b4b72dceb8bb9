"""One Triton client per (model, version) a process uses, made on first use and kept.

With ``images_per_request`` above 1, each is a ``BatchingClassifier``: the process's
concurrent one-image inferences share requests of up to that many images. At most
``MAX_CLIENTS`` are kept (the least recently used goes): a caller naming model after
model must not grow the process without bound. One that goes is not closed here: a call
in flight still holds it, and tritonclient closes its channel when it is collected.

With ``shared_memory``, every client of the process sends its pixels through the
process's one set of shared-memory regions (``podium.stores.inference.shared_memory``), ``slots`` of them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from podium.core.modelmeta import ModelRef
from podium.stores.inference.batching import BatchingClassifier
from podium.stores.inference.shared_memory import SharedMemorySlots
from podium.stores.inference.triton import TritonClassifier

MAX_CLIENTS = 16


class Classifiers:
    def __init__(
        self, url: str, timeout_s: float, images_per_request: int = 1, shared_memory: bool = False, slots: int = 4
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.images_per_request = images_per_request
        self._made: OrderedDict[ModelRef, TritonClassifier | BatchingClassifier] = OrderedDict()
        self._lock = threading.Lock()
        self._shared = SharedMemorySlots(url, slots, images_per_request, timeout_s) if shared_memory else None

    def get(self, ref: ModelRef) -> TritonClassifier | BatchingClassifier:
        with self._lock:
            if ref not in self._made:
                classifier = TritonClassifier(
                    self.url, ref.name, self.timeout_s, version=ref.version, shared=self._shared
                )
                if self.images_per_request > 1:
                    classifier = BatchingClassifier(classifier, self.images_per_request)
                self._made[ref] = classifier
                while len(self._made) > MAX_CLIENTS:
                    self._made.popitem(last=False)
            self._made.move_to_end(ref)
            return self._made[ref]

    def close(self) -> None:
        with self._lock:
            for classifier in self._made.values():
                classifier.close()
            self._made.clear()
            if self._shared is not None:
                self._shared.close()
                self._shared = None
