"""WebhookSender's schedule on fakes: once across replicas, fair between owners, no thread held by a retry."""

from __future__ import annotations

import threading
import time
from collections import Counter

from gateway.access import Caller
from gateway.service import JobOptions
from gateway.webhook_sender import WebhookSender
from podium.core.jobs import JobState
from tests.support.gateway import service


def ended_jobs(jobs, count: int, owner: str, url: str = "https://hooks.example/h") -> list[str]:
    ids = []
    for i in range(count):
        job = jobs.submit_upload(JobOptions(name=f"{owner}-{i}", webhook=f"{url}/{owner}/{i}"), Caller(owner), [])
        assert jobs.store.get(job.id).state is JobState.COMPLETED
        ids.append(job.id)
    return ids


class Receiver:
    """A fake send: records each POST; ``slow`` URLs take ``delay_s``, ``down`` URLs fail."""

    def __init__(self, delay_s: float = 0.0, slow: str = "", down: str = "") -> None:
        self.posts: list[tuple[str, float]] = []
        self.delay_s, self.slow, self.down = delay_s, slow, down
        self.lock = threading.Lock()

    def __call__(self, url: str, body: bytes, secret: str, timeout_s: float) -> None:
        if self.slow and self.slow in url:
            time.sleep(self.delay_s)
        if self.down and self.down in url:
            raise OSError("connection refused")
        with self.lock:
            self.posts.append((url, time.monotonic()))


def running(sender: WebhookSender) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=sender.run, args=(stop,), daemon=True).start()
    return stop


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_gateways_deliver_each_job_once():
    jobs = service()
    ids = ended_jobs(jobs, 12, "owner-a")
    receiver = Receiver(delay_s=0.05, slow="owner-a")
    stops = [running(WebhookSender(jobs.store, "", 1.0, 60, send=receiver, per_owner=8)) for _ in range(2)]
    try:
        wait_for(lambda: len(receiver.posts) >= len(ids))
        time.sleep(0.5)  # any duplicate would have come by now
    finally:
        for stop in stops:
            stop.set()
    assert Counter(url for url, _ in receiver.posts) == Counter(
        f"https://hooks.example/h/owner-a/{i}" for i in range(12)
    )
    assert jobs.store.requeue_webhooks() == 0  # nothing left in hand


def test_a_delivery_in_hand_is_not_taken_over_by_a_starting_replica():
    jobs = service()
    (job_id,) = ended_jobs(jobs, 1, "owner-a")
    receiver = Receiver(delay_s=1.5, slow="owner-a")
    first = running(WebhookSender(jobs.store, "", 5.0, 60, send=receiver))
    try:
        wait_for(lambda: _in_hand(jobs, job_id))  # the first gateway holds it, mid-POST
        second = running(WebhookSender(jobs.store, "", 5.0, 60, send=receiver))  # sweeps at start
        wait_for(lambda: len(receiver.posts) == 1)
        time.sleep(0.3)
        second.set()
    finally:
        first.set()
    assert len(receiver.posts) == 1


def _in_hand(jobs, job_id: str) -> bool:
    from podium.stores.jobstore.schema import WEBHOOK_SENDING_KEY

    return job_id.encode() in jobs.store._redis.lrange(WEBHOOK_SENDING_KEY, 0, -1)


def test_one_owners_slow_receivers_do_not_delay_another_owners_delivery():
    jobs = service()
    ended_jobs(jobs, 8, "slow-owner")
    receiver = Receiver(delay_s=2.0, slow="slow-owner")
    stop = running(WebhookSender(jobs.store, "", 5.0, 60, workers=4, send=receiver, per_owner=2))
    try:
        time.sleep(0.3)  # the slow owner's receivers are now holding its share of workers
        started = time.monotonic()
        ended_jobs(jobs, 1, "quick-owner")
        wait_for(lambda: any("quick-owner" in url for url, _ in receiver.posts))
        assert time.monotonic() - started < 1.5  # not behind the slow owner's 2 s posts
    finally:
        stop.set()


def test_retries_wait_in_the_schedule_not_in_a_thread(monkeypatch):
    monkeypatch.setattr("gateway.webhook_sender._FIRST_DELAY_S", 5.0)
    jobs = service()
    ended_jobs(jobs, 6, "down-owner")  # every attempt fails; the next is 5 s away
    receiver = Receiver(down="down-owner")
    stop = running(WebhookSender(jobs.store, "", 1.0, 600, workers=2, send=receiver, per_owner=8))
    try:
        time.sleep(0.5)
        ended_jobs(jobs, 1, "other-owner")
        wait_for(lambda: any("other-owner" in url for url, _ in receiver.posts), timeout_s=2.0)
    finally:
        stop.set()


def test_stopping_waits_on_no_receiver():
    jobs = service()
    ended_jobs(jobs, 1, "owner-a")
    receiver = Receiver(delay_s=30.0, slow="owner-a")
    sender = WebhookSender(jobs.store, "", 60.0, 60, send=receiver)
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(0.5)  # a worker is now inside the 30 s POST
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2.0
