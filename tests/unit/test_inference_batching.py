"""BatchingClassifier on a fake: concurrent one-image asks share requests, each gets its own answer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from podium.stores.inference import TritonUnavailable
from podium.stores.inference.batching import BatchingClassifier
from tests.support.fakes import FakeClassifier


def ask_concurrently(classifier, images: list[np.ndarray], explain: bool = False) -> list:
    answers: list = [None] * len(images)
    start = threading.Barrier(len(images))

    def one(i: int) -> None:
        start.wait()
        try:
            answers[i] = classifier.infer(images[i][None], explain=explain)
        except Exception as exc:  # noqa: BLE001 - compared below
            answers[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return answers


def grey(level: int) -> np.ndarray:
    return np.full((224, 224, 3), level, dtype=np.uint8)


def test_concurrent_asks_share_requests_and_each_gets_its_own_answer():
    fake = FakeClassifier()
    batching = BatchingClassifier(fake, images_per_request=4, max_wait_s=0.5)
    images = [grey(level) for level in (10, 250, 130, 10, 250, 130, 10, 250)]
    answers = ask_concurrently(batching, images, explain=True)
    for image, answer in zip(images, answers, strict=True):
        alone = fake.infer(image[None], explain=True)
        np.testing.assert_array_equal(answer.probabilities, alone.probabilities)
        np.testing.assert_array_equal(answer.maps, alone.maps)
    assert sorted(fake.batches[:-8]) == [4, 4]  # two requests of four (then the eight lone checks)


def test_a_lone_ask_goes_out_after_the_wait():
    fake = FakeClassifier()
    batching = BatchingClassifier(fake, images_per_request=8, max_wait_s=0.01)
    answer = batching.infer(grey(10)[None])
    assert answer.probabilities.shape == (1, len(fake.classes)) and fake.batches == [1]
    assert batching.metadata() == fake.metadata()  # the rest of the interface passes through


def test_a_failed_request_fails_each_of_its_images():
    fake = FakeClassifier(down=True)
    batching = BatchingClassifier(fake, images_per_request=3, max_wait_s=0.5)
    answers = ask_concurrently(batching, [grey(10)] * 3)
    assert all(isinstance(answer, TritonUnavailable) for answer in answers)


def test_one_image_per_request_is_the_plain_classifier():
    fake = FakeClassifier()
    batching = BatchingClassifier(fake, images_per_request=1)
    ask_concurrently(batching, [grey(10)] * 3)
    assert fake.batches == [1, 1, 1]


@pytest.mark.parametrize("explain", [False, True])
def test_plain_and_explained_asks_ride_apart(explain):
    fake = FakeClassifier()
    batching = BatchingClassifier(fake, images_per_request=2, max_wait_s=0.5)
    answers = ask_concurrently(batching, [grey(10), grey(250)], explain=explain)
    assert all((answer.maps is not None) == explain for answer in answers)


def test_an_ask_while_triton_is_away_leaves_nothing_gathered():
    fake = FakeClassifier(down=True)
    batching = BatchingClassifier(fake, images_per_request=4, max_wait_s=0.5)
    with pytest.raises(TritonUnavailable):
        batching.infer(grey(10)[None])
    fake.down = False
    ask_concurrently(batching, [grey(level) for level in (10, 250, 130, 60)])
    assert fake.batches == [4]  # the four asked now, and no fifth left from before
