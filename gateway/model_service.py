"""ModelService: the served model, for ListClasses and the synchronous Classify."""

from __future__ import annotations

import threading

from errors import InvalidArgument, Unavailable
from gateway.service import checked_top_k
from gateway.settings import GatewaySettings
from inference import TritonClassifier, TritonUnavailable, classify_bytes
from jobs import ImageOutcome
from modelmeta import ModelMetadata


class ModelService:
    def __init__(self, settings: GatewaySettings, classifier: TritonClassifier | None = None) -> None:
        self.settings = settings
        self._classifier = classifier  # created on first use, unless given (tests)
        self._decoder = settings.decoder()  # Classify decodes within the same limits as workers
        self._lock = threading.Lock()

    def classifier(self) -> TritonClassifier:
        with self._lock:
            if self._classifier is None:
                self._classifier = TritonClassifier(
                    self.settings.triton_url, self.settings.model_name, self.settings.triton_timeout_s
                )
            return self._classifier

    def metadata(self) -> ModelMetadata:
        try:
            return self.classifier().metadata()
        except TritonUnavailable as exc:
            raise Unavailable(f"the inference server is not available: {exc}") from exc

    def classify(self, images: list[tuple[str, bytes]], top_k: int) -> list[ImageOutcome]:
        if not images:
            raise InvalidArgument("send at least one image")
        if len(images) > self.settings.classify_max_images:
            raise InvalidArgument(
                f"Classify takes at most {self.settings.classify_max_images} images; submit a job for more"
            )
        top_k = checked_top_k(top_k, self.settings.default_top_k)
        self.metadata()
        try:
            return [classify_bytes(self.classifier(), data, top_k, self._decoder) for _, data in images]
        except TritonUnavailable as exc:
            raise Unavailable(f"the inference server is not available: {exc}") from exc
