"""One Triton client per (model, version) a process uses, made on first use and kept."""

from __future__ import annotations

import threading

from inference.triton import TritonClassifier
from modelmeta import ModelRef


class Classifiers:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._made: dict[ModelRef, TritonClassifier] = {}
        self._lock = threading.Lock()

    def get(self, ref: ModelRef) -> TritonClassifier:
        with self._lock:
            if ref not in self._made:
                self._made[ref] = TritonClassifier(self.url, ref.name, self.timeout_s, version=ref.version)
            return self._made[ref]

    def close(self) -> None:
        with self._lock:
            for classifier in self._made.values():
                classifier.close()
            self._made.clear()
