"""The webhook queue's polling: sparing while nothing comes, prompt once something does."""

from __future__ import annotations

import threading
import time

import fakeredis

from podium.stores.jobstore.schema import WEBHOOK_QUEUE_KEY
from podium.stores.jobstore.webhook_queue import WebhookQueue


def counted(queue: WebhookQueue) -> list[float]:
    """The times of the queue's take scripts from now on."""
    calls, take = [], queue._take

    def counting(**kwargs):
        calls.append(time.monotonic())
        return take(**kwargs)

    queue._take = counting
    return calls


def test_an_idle_gateway_asks_redis_about_once_a_second():
    queue = WebhookQueue(fakeredis.FakeRedis())
    calls = counted(queue)
    started = time.monotonic()
    while time.monotonic() - started < 3.0:
        assert queue.take(1.0, 60) is None  # as the sender asks: one second at a time
    # 0.1, 0.2 and 0.4 s apart, then about one a second: 7-8 where a fixed 0.1 s poll made 30
    assert 5 <= len(calls) <= 10, calls


def test_a_webhook_after_a_quiet_spell_is_taken_within_a_second_and_the_next_at_once():
    client = fakeredis.FakeRedis()
    queue = WebhookQueue(client)
    taken: list[tuple[str, float]] = []
    stop = threading.Event()

    def sender() -> None:
        while not stop.is_set():
            job_id = queue.take(1.0, 60)
            if job_id:
                taken.append((job_id, time.monotonic()))

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        time.sleep(2.5)  # long enough for the poll to reach a second
        queued = time.monotonic()
        client.lpush(WEBHOOK_QUEUE_KEY, "job-a")
        while len(taken) < 1:
            time.sleep(0.01)
        second_queued = time.monotonic()
        client.lpush(WEBHOOK_QUEUE_KEY, "job-b")
        while len(taken) < 2:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(3)
    assert taken[0][0] == "job-a" and taken[0][1] - queued <= 1.1
    assert taken[1][0] == "job-b" and taken[1][1] - second_queued <= 0.25  # the poll started again at 0.1 s
