"""The Triton client's checks, without Triton: a response must carry its request's row tags (or fingerprint)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from podium.core.modelmeta import fingerprint
from podium.stores.inference import TritonUnavailable
from podium.stores.inference.triton import TritonClassifier, check_fingerprint, check_row_tags


def test_a_response_with_another_requests_fingerprint_is_refused():
    rng = np.random.default_rng(0)
    mine, theirs = rng.integers(0, 256, (2, 1, 224, 224, 3), dtype=np.uint8)
    check_fingerprint(mine, fingerprint(mine), "m")  # its own: accepted
    with pytest.raises(TritonUnavailable, match="another request's response"):
        check_fingerprint(mine, fingerprint(theirs), "m")
    with pytest.raises(TritonUnavailable):
        check_fingerprint(mine, None, "m")


def test_a_response_with_another_requests_row_tags_is_refused():
    mine = np.arange(10, 13, dtype=np.int64)[:, None]
    check_row_tags(mine, mine.copy(), "m")  # its own: accepted
    check_row_tags(mine, mine.ravel(), "m")  # in whatever shape Triton hands it back
    with pytest.raises(TritonUnavailable, match="another request's response"):
        check_row_tags(mine, mine + 3, "m")
    with pytest.raises(TritonUnavailable):
        check_row_tags(mine, None, "m")


def test_row_tags_never_repeat_within_a_client_across_threads():
    classifier = TritonClassifier("127.0.0.1:1", "m")  # a channel is opened lazily: nothing connects
    try:
        with ThreadPoolExecutor(8) as pool:
            batches = list(pool.map(classifier._row_tags, [1, 16, 3, 64] * 50))
    finally:
        classifier.close()
    tags = np.concatenate(batches).ravel()
    assert len(np.unique(tags)) == len(tags) == 84 * 50
    assert all(b.shape == (n, 1) and b.dtype == np.int64 for b, n in zip(batches, [1, 16, 3, 64] * 50, strict=True))
    # Each request's tags are consecutive: one start, one count.
    assert all(np.array_equal(np.diff(b.ravel()), np.ones(len(b) - 1)) for b in batches)


def test_a_request_larger_than_the_model_takes_goes_in_parts_answered_as_one(monkeypatch):
    from podium.core.modelmeta import ModelMetadata
    from podium.stores.inference.triton import Inference

    classifier = TritonClassifier("127.0.0.1:1", "m")  # a channel is opened lazily: nothing connects
    classifier._metadata = ModelMetadata(model_name="m", target="cpu", classes=["a", "b"], cam_name="cam")
    classifier._max_batch_size = 32
    sent = []

    def answer(meta, pixels, explain, slot):  # each row's answer is its first pixel
        sent.append(len(pixels))
        first = pixels[:, 0, 0, 0].astype(np.float32)
        return Inference(np.stack([first, -first], axis=1), first[:, None, None] * np.ones((1, 7, 7), np.float32))

    monkeypatch.setattr(classifier, "_infer", answer)
    pixels = np.zeros((70, 224, 224, 3), dtype=np.uint8)
    pixels[:, 0, 0, 0] = np.arange(70)
    try:
        assert classifier.request_size(64) == 32 and classifier.request_size(16) == 16
        got = classifier.infer(pixels, explain=True)
    finally:
        classifier.close()
    assert sent == [32, 32, 6]
    assert np.array_equal(got.probabilities[:, 0], np.arange(70)) and got.maps.shape == (70, 7, 7)
    assert np.array_equal(got.maps[:, 3, 3], np.arange(70))


def test_a_process_keeps_a_bounded_number_of_triton_clients():
    """Asking for model after model (a caller's typos, say) does not grow the process."""
    from podium.core.modelmeta import ModelRef
    from podium.stores.inference.pool import MAX_CLIENTS, Classifiers

    classifiers = Classifiers("127.0.0.1:1", 1.0)  # channels open lazily: nothing connects
    try:
        first = classifiers.get(ModelRef("model-0"))
        for number in range(1, 3 * MAX_CLIENTS):
            classifiers.get(ModelRef(f"model-{number}"))
            assert classifiers.get(ModelRef("model-0")) is first  # the one in use stays
        assert len(classifiers._made) == MAX_CLIENTS
    finally:
        classifiers.close()


def test_a_request_whose_python_backend_stub_died_is_asked_again():
    from tritonclient.utils import InferenceServerException

    from podium.stores.inference.triton import _convert

    lost = InferenceServerException("Failed to retrieve the response error.", status="StatusCode.INTERNAL")
    assert isinstance(_convert(lost, "inference"), TritonUnavailable)
    garbled = InferenceServerException(
        "unexpected inference output '' for model 'resnet50_sports'", status="StatusCode.INTERNAL"
    )
    assert isinstance(_convert(garbled, "inference"), TritonUnavailable)
    misnamed = InferenceServerException(
        "unexpected inference output 'logits' for model 'm'", status="StatusCode.INTERNAL"
    )
    assert not isinstance(_convert(misnamed, "inference"), TritonUnavailable)
    refused = InferenceServerException("unexpected shape for input 'images'", status="StatusCode.INVALID_ARGUMENT")
    assert not isinstance(_convert(refused, "inference"), TritonUnavailable)


def test_a_model_triton_is_still_loading_is_waited_for_and_an_unknown_one_is_not():
    from tritonclient.utils import InferenceServerException

    from podium.stores.inference.triton import ModelNotFound, _convert

    # Triton's words while it loads a model after a restart (seen in CI after a freeze).
    loading = InferenceServerException(
        "Request for unknown model: 'resnet50_sports' version 1 is not at ready state",
        status="StatusCode.UNAVAILABLE",
    )
    assert isinstance(_convert(loading, "inference"), TritonUnavailable)
    unknown = InferenceServerException(
        "Request for unknown model: 'nope' is not found", status="StatusCode.INVALID_ARGUMENT"
    )
    converted = _convert(unknown, "inference")
    assert isinstance(converted, ModelNotFound) and not isinstance(converted, TritonUnavailable)


def test_a_requests_outcomes_in_one_sort_equal_each_rows_own():
    """Top-k of every row at once: the same classes, order (ties by class index), probabilities
    and maps as one row at a time."""
    from podium.stores.inference.pipeline import outcome_of, outcomes_of

    rng = np.random.default_rng(5)
    probabilities = rng.random((9, 100)).astype(np.float32)
    probabilities[3, [7, 40, 41]] = 2.0  # a tie at the top
    maps = rng.random((9, 7, 7)).astype(np.float32)
    classes = [f"class {i}" for i in range(100)]
    for k in (1, 5, 100, 500):
        for cells in (None, maps):
            rows = [outcome_of(probabilities[r], None if cells is None else cells[r], k, classes) for r in range(9)]
            assert outcomes_of(probabilities, cells, k, classes) == rows
    assert [p.index for p in outcomes_of(probabilities, None, 3, classes)[3].predictions] == [7, 40, 41]
