"""ModelService: the served models, for resolving a job's model, ListClasses and Classify."""

from __future__ import annotations

from collections.abc import Callable

from gateway.settings import GatewaySettings
from podium.core.errors import FailedPrecondition, InvalidArgument
from podium.core.jobs import ImageOutcome
from podium.core.modelmeta import ModelMetadata, ModelRef
from podium.stores.inference import Classifiers, TritonClassifier, classify_bytes

MAX_TOP_K = 1000


def checked_top_k(top_k: int, default: int) -> int:
    """top_k as asked (0: the default), or InvalidArgument outside 1..MAX_TOP_K."""
    top_k = top_k or default
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidArgument(f"top_k must be between 1 and {MAX_TOP_K}, not {top_k}")
    return top_k


def require_maps(model: ModelRef, metadata: ModelMetadata) -> None:
    """FailedPrecondition unless the model version answers activation maps."""
    if not metadata.cam_name:
        raise FailedPrecondition(
            f"model {model} was exported without activation maps, so it cannot explain its answers",
            hint="export the checkpoint again with `podium export` (new versions have maps), or drop --explain",
        )


class ModelService:
    def __init__(self, settings: GatewaySettings, classifier_for: Callable[[ModelRef], TritonClassifier] | None = None):
        self.settings = settings
        self._classifiers = Classifiers(settings.triton_url, settings.triton_timeout_s)
        # Tests pass a factory of fakes; the gateway keeps one real client per model version.
        self._classifier_for = classifier_for or self._classifiers.get
        self._decoder = settings.decoder()  # Classify decodes within the same limits as workers

    def resolve(self, model: str) -> tuple[ModelRef, ModelMetadata]:
        """The model a request names (or the default), with its version pinned and its metadata.

        NotFound for a model or version Triton does not serve; Unavailable while Triton is down."""
        asked = ModelRef.parse(model, self.settings.model_name)
        version = self._classifier_for(asked).served_version()
        pinned = ModelRef(asked.name, version)
        return pinned, self._classifier_for(pinned).metadata()

    def classify(
        self, images: list[tuple[str, bytes]], top_k: int, model: str = "", explain: bool = False
    ) -> list[ImageOutcome]:
        if not images:
            raise InvalidArgument("send at least one image")
        if len(images) > self.settings.classify_max_images:
            raise InvalidArgument(
                f"Classify takes at most {self.settings.classify_max_images} images; submit a job for more"
            )
        top_k = checked_top_k(top_k, self.settings.default_top_k)
        ref, metadata = self.resolve(model)
        if explain:
            require_maps(ref, metadata)
        classifier = self._classifier_for(ref)
        return [classify_bytes(classifier, data, top_k, self._decoder, explain) for _, data in images]

    def close(self) -> None:
        self._classifiers.close()
