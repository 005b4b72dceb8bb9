"""One Triton client per (model, version) a process uses, made on first use and kept.

With ``images_per_request`` above 1, each is a ``BatchingClassifier``: the process's
concurrent one-image inferences share requests of up to that many images.
"""

from __future__ import annotations

import threading

from inference.batching import BatchingClassifier
from inference.triton import TritonClassifier
from modelmeta import ModelRef


class Classifiers:
    def __init__(self, url: str, timeout_s: float, images_per_request: int = 1) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.images_per_request = images_per_request
        self._made: dict[ModelRef, TritonClassifier | BatchingClassifier] = {}
        self._lock = threading.Lock()

    def get(self, ref: ModelRef) -> TritonClassifier | BatchingClassifier:
        with self._lock:
            if ref not in self._made:
                classifier = TritonClassifier(self.url, ref.name, self.timeout_s, version=ref.version)
                if self.images_per_request > 1:
                    classifier = BatchingClassifier(classifier, self.images_per_request)
                self._made[ref] = classifier
            return self._made[ref]

    def close(self) -> None:
        with self._lock:
            for classifier in self._made.values():
                classifier.close()
            self._made.clear()
