"""The interceptors on fake handlers: API keys, and PodiumError -> gRPC status in one place."""

from __future__ import annotations

from collections import namedtuple

import grpc
import pytest

from gateway.interceptors import MAX_DETAILS_CHARS, ApiKeyInterceptor, ErrorInterceptor
from podium.core.errors import NotFound, PodiumError, ResourceExhausted, Status
from podium.core.proto.status import GRPC_CODES, read_trailers, status_of
from podium.stores.jobstore.errors import StoreUnavailable
from tests.support.fakes import Aborted, FakeContext

Details = namedtuple("Details", "method invocation_metadata")
METHOD = "/podium.v1.Podium/GetJob"


def intercepted(interceptor, behaviour, *, streaming=False, method=METHOD, metadata=()):
    """The behaviour as the server would run it behind ``interceptor``."""
    handler = (grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler)(behaviour)
    wrapped = interceptor.intercept_service(lambda _details: handler, Details(method, metadata))
    return wrapped.unary_stream if streaming else wrapped.unary_unary


def aborted_with(call) -> Aborted:
    with pytest.raises(Aborted) as info:
        call()
    return info.value


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("no job 'x'"), grpc.StatusCode.NOT_FOUND),
        (ResourceExhausted("too many"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (StoreUnavailable("the job store (Redis) is unavailable"), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_a_podium_error_becomes_its_status(error, code):
    def fail(request, context):
        raise error

    abort = aborted_with(lambda: intercepted(ErrorInterceptor(), fail)(None, FakeContext()))
    assert (abort.code, abort.details) == (code, error.message)


def test_the_hint_and_the_gateways_own_answer_travel_in_the_trailers():
    def fail(request, context):
        raise StoreUnavailable("the job store (Redis) is unavailable: Timeout reading from socket")

    context = FakeContext()
    aborted_with(lambda: intercepted(ErrorInterceptor(), fail)(None, context))
    answered, hint = read_trailers(context.trailers)
    assert answered and hint == StoreUnavailable.hint and "redis-server" in hint
    assert read_trailers(()) == (False, None)
    context = FakeContext()
    aborted_with(
        lambda: intercepted(ErrorInterceptor(), lambda r, c: (_ for _ in ()).throw(NotFound("no job")))(None, context)
    )
    assert read_trailers(context.trailers) == (True, None)  # no hint: none sent


def test_a_bug_becomes_internal_without_details():
    def bug(request, context):
        raise KeyError("secret internals")

    abort = aborted_with(lambda: intercepted(ErrorInterceptor(), bug)(None, FakeContext()))
    assert abort.code == grpc.StatusCode.INTERNAL and "secret" not in abort.details


def test_streams_are_mapped_too_and_details_are_bounded():
    def stream(request, context):
        yield 1
        raise NotFound("x" * 5000)

    run = intercepted(ErrorInterceptor(), stream, streaming=True)
    results = run(None, FakeContext())
    assert next(results) == 1
    abort = aborted_with(lambda: next(results))
    assert abort.code == grpc.StatusCode.NOT_FOUND and len(abort.details) <= MAX_DETAILS_CHARS


def test_api_keys_are_required_except_for_health():
    keys = ApiKeyInterceptor(["k1", "k2"])

    def answer(request, context):
        return "answer"

    assert intercepted(keys, answer, metadata=(("x-api-key", "k2"),))(None, FakeContext()) == "answer"
    for metadata in ((), (("x-api-key", "wrong"),)):
        abort = aborted_with(
            lambda metadata=metadata: intercepted(keys, answer, metadata=metadata)(None, FakeContext())
        )
        assert abort.code == grpc.StatusCode.UNAUTHENTICATED and "PODIUM_API_KEY" in abort.details
    health = intercepted(keys, answer, method="/grpc.health.v1.Health/Check")
    assert health(None, FakeContext()) == "answer"


def test_every_status_has_one_grpc_code_and_back():
    assert set(GRPC_CODES) == set(Status)
    for status, code in GRPC_CODES.items():
        assert status_of(code) is status
    assert status_of(grpc.StatusCode.DEADLINE_EXCEEDED) is Status.UNAVAILABLE
    assert issubclass(StoreUnavailable, PodiumError)


def test_an_upload_is_idle_only_while_the_gateway_waits_for_it():
    import threading
    import time

    from gateway.streams import IdleWatch

    fired = threading.Event()

    def slowly_sent():
        yield "spec"
        time.sleep(0.6)  # the client takes its time: idle
        yield "file"

    with IdleWatch(0.4, fired.set) as watch:
        watch.busy()
        time.sleep(0.8)  # the gateway's own work (Triton away, backpressure): not idleness
        assert not fired.is_set()
        got = []
        for item in watch.received(iter(["a", "b"])):
            got.append(item)
            time.sleep(0.5)  # busy with each message
        assert got == ["a", "b"] and not fired.is_set()
        list(watch.received(slowly_sent()))
    assert fired.wait(1.0) and watch.fired
