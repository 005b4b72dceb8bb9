"""Pixels through shared memory, without Triton: a fake client reads the regions the way
Triton would (the files in /dev/shm), refuses, forgets and answers as Triton does."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from podium.core.modelmeta import ModelMetadata
from podium.stores.inference.shared_memory import PREFIX, SHM_DIR, SharedMemorySlots, is_local, sweep_stale
from podium.stores.inference.triton import TritonClassifier, TritonUnavailable

CLASSES = ["a", "b", "c"]
IMAGE = (224, 224, 3)


class FakeTriton:
    """Registrations by name; infer reads a shared-memory input from its file, as Triton maps it."""

    def __init__(self) -> None:
        self.registered: dict[str, tuple[str, int]] = {}
        self.seen: list[np.ndarray] = []
        self.wire = 0
        self.refuse_registration: str | None = None
        self.forget_next = False
        self.hold: threading.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def register_system_shared_memory(self, name, key, byte_size, client_timeout=None):
        if self.refuse_registration:
            raise InferenceServerException(self.refuse_registration, status="StatusCode.INVALID_ARGUMENT")
        if name in self.registered:
            raise InferenceServerException(f"shared memory region '{name}' already in manager")
        self.registered[name] = (key, byte_size)

    def unregister_system_shared_memory(self, name="", client_timeout=None):
        self.registered.pop(name, None)

    def get_system_shared_memory_status(self, region_name="", as_json=False, client_timeout=None):
        return {"regions": {name: {"name": name, "key": key} for name, (key, _) in self.registered.items()}}

    def infer(self, model_name, inputs, model_version="", outputs=None, client_timeout=None):
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return self._answer(inputs)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, inputs):
        tensor = inputs[0]._get_tensor()
        shape = list(tensor.shape)
        region = tensor.parameters.get("shared_memory_region")
        if region is None:
            self.wire += 1
            pixels = np.frombuffer(inputs[0]._get_content(), dtype=np.uint8).reshape(shape)
        else:
            name = region.string_param
            if self.forget_next or name not in self.registered:
                self.forget_next = False
                self.registered.clear()
                raise InferenceServerException(
                    f"Unable to find system shared memory region: '{name}'", status="StatusCode.INVALID_ARGUMENT"
                )
            nbytes = tensor.parameters["shared_memory_byte_size"].int64_param
            key = self.registered[name][0]
            pixels = np.fromfile(SHM_DIR / key.lstrip("/"), dtype=np.uint8, count=nbytes).reshape(shape)
        if self.hold is not None:
            self.hold.wait(5)
        self.seen.append(pixels.copy())
        tags = np.frombuffer(inputs[1]._get_content(), dtype=np.int64).reshape(-1, 1)
        probabilities = np.tile(np.float32([0.7, 0.2, 0.1]), (shape[0], 1))
        return _Result({"probabilities": probabilities, "row_tag_echo": tags})

    def close(self):
        pass


class _Result:
    def __init__(self, arrays):
        self._arrays = arrays

    def as_numpy(self, name):
        return self._arrays.get(name)


@pytest.fixture
def triton():
    return FakeTriton()


def classifier_with(triton: FakeTriton, slots: int = 2, images_per_request: int = 4) -> TritonClassifier:
    shared = SharedMemorySlots("127.0.0.1:1", slots, images_per_request, 1.0, client=triton)
    classifier = TritonClassifier("127.0.0.1:1", "m", 1.0, shared=shared)  # a channel opens lazily: nothing connects
    classifier._client = triton
    classifier._metadata = ModelMetadata(
        model_name="m", target="cpu", classes=CLASSES, row_tag_name="row_tag", row_tag_echo_name="row_tag_echo"
    )
    return classifier


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *IMAGE), dtype=np.uint8)


def own_regions() -> list[Path]:
    return sorted(SHM_DIR.glob(f"{PREFIX}{os.getpid()}-*"))


def test_pixels_travel_in_shared_memory_through_reused_regions(triton):
    classifier = classifier_with(triton, slots=2)
    try:
        for seed in range(5):
            pixels = images(3, seed)
            answer = classifier.infer(pixels)
            np.testing.assert_array_equal(triton.seen[-1], pixels)
            assert answer.probabilities.shape == (3, 3)
        assert triton.wire == 0
        assert len(triton.registered) == 2 and len(own_regions()) == 2
    finally:
        classifier.shared.close()
    assert own_regions() == [] and triton.registered == {}  # unregistered and unlinked


def test_a_chunks_images_go_into_a_region_row_by_row_or_stacked_over_the_wire(triton):
    classifier = classifier_with(triton, images_per_request=3)
    try:
        for count in (3, 5):  # a region holds 3 images: 5 go over the wire, as one request
            pixels = images(count, seed=count)
            answer = classifier.infer(list(pixels))  # unstacked, as a worker's decoded images are
            np.testing.assert_array_equal(triton.seen[-1], pixels)
            assert answer.probabilities.shape == (count, 3)
        assert triton.wire == 1 and len(triton.seen) == 2
        with pytest.raises(ValueError, match="share one shape"):
            classifier.infer([images(1)[0], images(1)[0][:100]])
        as_floats = [image.astype(np.float32) for image in images(2, seed=9)]  # converted, as an array is
        classifier.infer(as_floats)
        np.testing.assert_array_equal(triton.seen[-1], images(2, seed=9))
    finally:
        classifier.shared.close()


def test_a_triton_that_forgot_the_regions_gets_them_again(triton):
    classifier = classifier_with(triton)
    try:
        classifier.infer(images(2))
        triton.forget_next = True  # Triton restarted
        pixels = images(2, seed=1)
        classifier.infer(pixels)
        np.testing.assert_array_equal(triton.seen[-1], pixels)
        assert len(triton.registered) == 2
    finally:
        classifier.shared.close()


def test_a_triton_that_cannot_open_the_regions_gets_pixels_over_the_wire(triton):
    triton.refuse_registration = "failed to open shared memory region '/podium-1-x-0'"
    classifier = classifier_with(triton)
    try:
        pixels = images(2)
        classifier.infer(pixels)
        classifier.infer(pixels)
        np.testing.assert_array_equal(triton.seen[-1], pixels)
        assert triton.wire == 2 and classifier.shared.off
    finally:
        classifier.shared.close()


def test_a_triton_that_is_away_while_registering_is_unavailable_not_refused(triton):
    triton.refuse_registration = None

    def away(*_, **__):
        raise InferenceServerException("failed to connect", status="StatusCode.UNAVAILABLE")

    triton.register_system_shared_memory = away
    classifier = classifier_with(triton)
    try:
        with pytest.raises(TritonUnavailable):
            classifier.infer(images(1))
        assert not classifier.shared.off  # tried again once Triton is back
    finally:
        classifier.shared.close()


def test_a_request_larger_than_a_region_goes_over_the_wire(triton):
    classifier = classifier_with(triton, images_per_request=2)
    try:
        classifier.infer(images(2))
        classifier.infer(images(5))
        assert triton.wire == 1
        assert triton.seen[-1].shape == (5, *IMAGE)
    finally:
        classifier.shared.close()


def test_a_region_is_reused_only_after_its_response(triton):
    classifier = classifier_with(triton, slots=1)
    triton.hold = threading.Event()
    try:
        first = threading.Thread(target=classifier.infer, args=(images(1, 1),))
        second = threading.Thread(target=classifier.infer, args=(images(1, 2),))
        first.start()
        second.start()
        time.sleep(0.3)
        assert triton.in_flight == 1  # the second request waits for the region
        triton.hold.set()
        first.join(5)
        second.join(5)
        assert triton.most_in_flight == 1 and len(triton.seen) == 2
        assert {int(seen.sum()) for seen in triton.seen} == {int(images(1, 1).sum()), int(images(1, 2).sum())}
    finally:
        triton.hold.set()
        classifier.shared.close()


def test_regions_of_processes_that_are_gone_are_swept(tmp_path, triton):
    dead = _a_pid_not_running()
    for name in (f"{PREFIX}{dead}-ab12-0", f"{PREFIX}{os.getpid()}-ab12-0", "someone-else", f"{PREFIX}notours"):
        (tmp_path / name).write_bytes(b"x")
    triton.registered = {f"{PREFIX}{dead}-cd34-1": ("/k", 1), f"{PREFIX}{os.getpid()}-cd34-1": ("/k2", 1)}
    gone = sweep_stale(triton, 1.0, shm_dir=tmp_path)
    assert gone == [f"{PREFIX}{dead}-ab12-0", f"{PREFIX}{dead}-cd34-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{PREFIX}{os.getpid()}-ab12-0", "someone-else", f"{PREFIX}notours"]
    )
    assert list(triton.registered) == [f"{PREFIX}{os.getpid()}-cd34-1"]


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("127.0.0.1:8001", True),
        ("localhost:8001", True),
        ("[::1]:8001", True),
        ("127.0.0.2:8001", True),
        ("triton:8001", False),
        ("10.0.0.5:8001", False),
        ("[2001:db8::1]:8001", False),
    ],
)
def test_only_a_triton_on_this_machine_counts_as_local(url, local):
    assert is_local(url) is local


def _a_pid_not_running() -> int:
    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) - 1
    while Path(f"/proc/{pid}").exists():
        pid -= 1
    return pid


def test_no_room_in_dev_shm_sends_pixels_over_the_wire(triton, monkeypatch):
    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    classifier = classifier_with(triton)
    try:
        classifier.infer(images(1))
        assert triton.wire == 1 and classifier.shared.off and own_regions() == []
    finally:
        classifier.shared.close()
