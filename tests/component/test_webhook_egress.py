"""Webhook POSTs against real HTTP receivers on loopback: refused inside, no redirect, one deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.access import Caller
from gateway.egress import EgressPolicy, EgressRefused
from gateway.model_service import ModelService
from gateway.service import JobOptions, JobService
from gateway.settings import GatewaySettings
from gateway.webhook_http import post
from gateway.webhook_sender import WebhookSender
from podium.core.errors import InvalidArgument
from podium.stores.jobstore import JobStore
from tests.support.fakes import FakeClassifiers, FakeQueue
from tests.support.gateway import service
from tests.unit.test_archive_jobs import ended_job

LOOPBACK = EgressPolicy.parse("127.0.0.0/8")
BODY = b'{"job_id":"x"}'


class Receiver:
    """A loopback HTTP server that counts the POSTs it gets and answers as told."""

    def __init__(self, answer) -> None:
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.posts += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer(self)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def no_content(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(204)
    handler.end_headers()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(no_content)
    yield found
    found.close()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "localhost", "[::ffff:127.0.0.1]"],
)
def test_loopback_in_any_spelling_gets_no_request(receiver: Receiver, host: str):
    port = receiver.server.server_port
    with pytest.raises(EgressRefused, match="PODIUM_WEBHOOK_ALLOW_NETWORKS"):
        post(f"http://{host}:{port}/hook", BODY, {}, 2.0, EgressPolicy())
    assert receiver.posts == 0


def test_an_opened_network_is_delivered_to(receiver: Receiver):
    post(f"{receiver.url}/hook?token=t", BODY, {"Content-Type": "application/json"}, 2.0, LOOPBACK)
    assert receiver.posts == 1
    # Opening 127.0.0.0/8 does not open ::1 or the metadata address.
    for url in ("http://[::1]:1/", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(EgressRefused):
            post(url, BODY, {}, 2.0, LOOPBACK)


def test_a_redirect_is_not_followed(receiver: Receiver):
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"{receiver.url}/inside")
        handler.end_headers()

    first = Receiver(redirect)
    try:
        with pytest.raises(OSError, match="redirects are not followed"):
            post(first.url, BODY, {}, 2.0, LOOPBACK)
    finally:
        first.close()
    assert first.posts == 1 and receiver.posts == 0


def test_a_trickling_receiver_is_cut_off_at_the_deadline():
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 40:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.1)  # each byte resets a per-read time-out; the deadline holds anyway

    slow = Receiver(trickle)
    try:
        started = time.monotonic()
        with pytest.raises(OSError):
            post(slow.url, BODY, {}, 1.0, LOOPBACK)
        assert time.monotonic() - started < 2.5
    finally:
        slow.close()


def test_the_sender_checks_again_at_delivery_and_gives_up_at_once(receiver: Receiver):
    """A name may resolve elsewhere at delivery than at submit (DNS rebinding): the sender
    resolves and checks again, and gives a refused receiver up without retrying."""
    jobs = service(webhook_allow_networks="127.0.0.0/8")  # submit lets loopback through here...
    job = ended_job(jobs, webhook=f"{receiver.url}/hook")
    outcomes: list[bool] = []
    # ...the sender's policy does not.
    sender = WebhookSender(jobs.store, "", 2.0, retry_s=60.0, on_delivery=outcomes.append, policy=EgressPolicy())
    assert jobs.store.take_webhook(0.1) == job.id
    started = time.monotonic()
    assert sender.deliver(job.id, threading.Event()) is False
    assert time.monotonic() - started < 1.0  # no retries with backoff
    assert outcomes == [False] and receiver.posts == 0
    assert jobs.store.requeue_webhooks() == 0  # taken off the sending list


def test_submit_refuses_an_internal_receiver_with_the_reason():
    jobs = service()
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/",
        "http://2130706433/",
        "http://10.1.2.3/",
    ):
        with pytest.raises(InvalidArgument, match="PODIUM_WEBHOOK_ALLOW_NETWORKS"):
            ended_job(jobs, webhook=url)


def owned_job(jobs: JobService, owner: str, webhook: str) -> str:
    """An empty (so at once ended) job of ``owner`` with ``webhook``."""
    return jobs.submit_upload(JobOptions(name="finals", webhook=webhook), Caller(owner), []).id


def real_service(redis_client) -> JobService:
    """A JobService over the real redis-server (its queue and models are the unit tier's fakes)."""
    store = JobStore(redis_client)
    settings = GatewaySettings(chunk_size=2, max_queued_chunks=2, webhook_allow_networks="127.0.0.0/8")
    return JobService(settings, store, FakeQueue(store), ModelService(settings, FakeClassifiers().get))


class PathReceiver(Receiver):
    """A Receiver that also keeps each POST's path (which job it is about)."""

    def __init__(self, answer) -> None:
        self.paths: list[str] = []

        def kept(handler: BaseHTTPRequestHandler) -> None:
            self.paths.append(handler.path)
            answer(handler)

        super().__init__(kept)


def test_two_gateways_on_one_redis_post_each_job_once(redis_client, redis_url):
    receiver = PathReceiver(no_content)
    jobs = real_service(redis_client)
    try:
        ids = [owned_job(jobs, "owner-a", f"{receiver.url}/job/{i}") for i in range(12)]
        # Two replicas: each its own Redis connection, real POSTs to the loopback receiver.
        senders = [WebhookSender(JobStore.from_url(redis_url), "s", 5.0, 60, policy=LOOPBACK) for _ in range(2)]
        stops = [threading.Event() for _ in senders]
        for sender, stop in zip(senders, stops, strict=True):
            threading.Thread(target=sender.run, args=(stop,), daemon=True).start()
        deadline = time.monotonic() + 20
        while len(receiver.paths) < len(ids):
            assert time.monotonic() < deadline, f"{len(receiver.paths)} of {len(ids)} delivered"
            time.sleep(0.05)
        time.sleep(0.5)  # a duplicate would have come by now
        for stop in stops:
            stop.set()
    finally:
        receiver.close()
    assert sorted(receiver.paths) == sorted(f"/job/{i}" for i in range(12))
    assert jobs.store.requeue_webhooks() == 0


def test_a_trickling_receiver_does_not_delay_another_owners_delivery(redis_client):
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):  # a byte every 0.1 s: 10 s, cut off by the delivery's deadline
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    slow, quick = PathReceiver(trickle), PathReceiver(no_content)
    jobs = real_service(redis_client)
    stop = threading.Event()
    try:
        for i in range(8):
            owned_job(jobs, "slow-owner", f"{slow.url}/slow/{i}")
        sender = WebhookSender(jobs.store, "s", 3.0, 60, workers=4, policy=LOOPBACK, per_owner=2)
        threading.Thread(target=sender.run, args=(stop,), daemon=True).start()
        deadline = time.monotonic() + 10
        while len(slow.paths) < 2:  # the slow owner's receivers now hold its share of the senders
            assert time.monotonic() < deadline
            time.sleep(0.02)
        started = time.monotonic()
        owned_job(jobs, "quick-owner", f"{quick.url}/quick")
        while not quick.paths:
            assert time.monotonic() - started < 2.0, "the quick owner's delivery waited behind the trickle"
            time.sleep(0.02)
    finally:
        stop.set()
        slow.close()
        quick.close()
