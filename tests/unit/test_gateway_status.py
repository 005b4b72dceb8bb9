"""GetStatus: Redis, the default model and the workers, read once per few seconds."""

from __future__ import annotations

from gateway.cluster_status import ClusterStatus
from podium.core.errors import Unavailable


class Models:
    def __init__(self):
        self.calls, self.down = 0, False

    def resolve(self, model):
        self.calls += 1
        if self.down:
            raise Unavailable("Triton at 127.0.0.1:8001 is not answering")
        return "resnet50_sports:3", None


def test_a_reading_names_each_part_and_is_shared_for_a_while():
    models, pings = Models(), []
    status = ClusterStatus(
        lambda: True, models, lambda timeout_s: pings.append(timeout_s) or ["w2@h", "w1@h"], ttl_s=60
    )
    first = status.read()
    assert (first.redis_ok, first.model_ok, first.model, first.workers) == (
        True,
        True,
        "resnet50_sports:3",
        ["w1@h", "w2@h"],
    )
    assert status.read() is first and models.calls == 1 and len(pings) == 1


def test_what_does_not_answer_is_said_not_raised():
    models = Models()
    models.down = True

    def redis_down():
        raise ConnectionError("refused")

    def no_broker(timeout_s):
        raise OSError("no broker")

    reading = ClusterStatus(redis_down, models, no_broker, ttl_s=0).read()
    assert not reading.redis_ok and not reading.model_ok and reading.workers == []
    assert "not answering" in reading.model_error
