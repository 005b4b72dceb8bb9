"""Bad input tried at scale: every RPC driven with thousands of generated and mutated messages.

Messages are built from the protobuf descriptors (every field of every request type, nested
ones included) out of hostile values: huge and negative numbers, NaN and infinities, NUL
and control characters, 1 MiB strings, unknown enum values, page tokens and ids that are
no such thing; then valid-looking messages are mutated a field at a time. Every answer
must be a success or a status other than INTERNAL (and UNKNOWN), no traceback may be
logged, and the gateway must still answer health within a second afterwards.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from podium.core.proto import podium_pb2 as pb
from podium.core.proto import podium_pb2_grpc as pb_grpc
from tests.component.test_gateway import make_gateway  # noqa: F401 - the fixture

SEED = 20261202
MESSAGES = 3000
CALL_TIMEOUT_S = 3.0
STRINGS = [
    "",
    "\x00",
    "a\x00b",
    "\x01\x02\x1b[31m\r\n",
    "x" * (1024 * 1024),
    "nan",
    "inf",
    "-inf",
    "1_0",
    "1e999",
    "-1",
    "0" * 5000,
    "9" * 5000,
    "../../etc/passwd",
    "/etc/shadow",
    "s3://",
    "s3://bucket/../x",
    "http://169.254.169.254/",
    "ftp://x/",
    "💥" * 1000,
    "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "0123456789abcdef0123456789abcdef",
    "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "%",
    "150%",
    "-5%",
    "1.5",
    "resnet50_sports:99999999999999999999",
    ":::",
    " ",
]
INTS = [0, 1, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 2**32 - 1, 10**9, 7]
FLOATS = [0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324]
BYTES = [b"", b"\x00", b"\xff\xd8\xff", b"GIF89a" + b"\x00" * 100, bytes(range(256)) * 64, b"x" * 1024 * 1024]
# Every unary-request method of the service, from its descriptor: a method added later is fuzzed too.
SERVICE = pb.DESCRIPTOR.services_by_name["Podium"]
REQUEST_TYPES = {m.name: getattr(pb, m.input_type.name) for m in SERVICE.methods if not m.client_streaming}
STREAMING_RESPONSES = {m.name for m in SERVICE.methods if m.server_streaming}
STREAMED_REQUESTS = {m.name for m in SERVICE.methods if m.client_streaming}
BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def value_for(field: FieldDescriptor, rng: random.Random, depth: int):
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return generated(field.message_type._concrete_class, rng, depth + 1)
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        return rng.choice(known + [-1, 99, 2**31 - 1])
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice(STRINGS)
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.choice(BYTES)
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return rng.choice(FLOATS)
    unsigned = kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED32)
    bits = 64 if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64) else 32
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return max(low, min(high, rng.choice(INTS)))


def generated(message_type, rng: random.Random, depth: int = 0):
    """A message of ``message_type`` with a random subset of its fields set to hostile values."""
    message = message_type()
    if depth > 3:
        return message
    for field in message_type.DESCRIPTOR.fields:
        if rng.random() < 0.4:
            continue
        if field.is_repeated:
            values = [value_for(field, rng, depth) for _ in range(rng.choice([0, 1, 3, 40]))]
            target = getattr(message, field.name)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for value in values:
                    target.add().CopyFrom(value)
            else:
                target.extend(values)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(value_for(field, rng, depth))
        else:
            setattr(message, field.name, value_for(field, rng, depth))
    return message


def mutated(message, rng: random.Random):
    """``message`` with one scalar field replaced by a hostile value."""
    copy = type(message)()
    copy.CopyFrom(message)
    scalars = [f for f in copy.DESCRIPTOR.fields if not f.is_repeated]
    scalars = [f for f in scalars if f.type != FieldDescriptor.TYPE_MESSAGE]
    if scalars:
        field = rng.choice(scalars)
        setattr(copy, field.name, value_for(field, rng, 0))
    return copy


def upload_stream(rng: random.Random) -> Iterator[pb.UploadRequest]:
    if rng.random() < 0.8:
        yield pb.UploadRequest(spec=generated(pb.JobSpec, rng))
    for _ in range(rng.choice([0, 1, 3])):
        yield generated(pb.UploadRequest, rng)


def manifest_stream(rng: random.Random) -> Iterator[pb.ManifestRequest]:
    if rng.random() < 0.8:
        yield pb.ManifestRequest(spec=generated(pb.JobSpec, rng))
    for _ in range(rng.choice([0, 1, 3])):
        yield generated(pb.ManifestRequest, rng)


def call_once(stub, method: str, rng: random.Random, valid_job_id: str) -> grpc.StatusCode:
    try:
        if method == "SubmitUpload":
            stub.SubmitUpload(upload_stream(rng), timeout=CALL_TIMEOUT_S)
        elif method == "SubmitManifest":
            stub.SubmitManifest(manifest_stream(rng), timeout=CALL_TIMEOUT_S)
        else:
            request = generated(REQUEST_TYPES[method], rng)
            if "job_id" in request.DESCRIPTOR.fields_by_name and rng.random() < 0.3:
                request = mutated(type(request)(job_id=valid_job_id), rng)
            answer = getattr(stub, method)(request, timeout=CALL_TIMEOUT_S)
            if method in STREAMING_RESPONSES:
                for _ in answer:
                    pass
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        return error.code()


@pytest.mark.timeout(600)
def test_thousands_of_hostile_messages_get_no_internal_error(make_gateway, caplog):  # noqa: F811
    address = make_gateway(data_roots="/nonexistent-data-root", s3_buckets="fuzz-bucket")
    rng = random.Random(SEED)
    methods = [*REQUEST_TYPES, "SubmitUpload", "SubmitManifest"]
    assert set(methods) == {m.name for m in SERVICE.methods}  # every RPC, or the streams above need a maker
    seen: Counter[tuple[str, str]] = Counter()
    bad: list[tuple[str, str]] = []
    caplog.set_level(logging.WARNING)
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 * 1024**2)]) as channel:
        stub = pb_grpc.PodiumStub(channel)
        job = stub.SubmitUpload(iter([pb.UploadRequest(spec=pb.JobSpec(name="target"))]), timeout=10)
        for number in range(MESSAGES):
            method = methods[number % len(methods)]
            code = call_once(stub, method, rng, job.id)
            seen[(method, code.name)] += 1
            if code in BAD_CODES:
                bad.append((method, code.name))
        started = time.monotonic()
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        health_s = time.monotonic() - started
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info and r.name.startswith(("gateway", "jobstore"))]
    summary = ", ".join(f"{m} {c}: {n}" for (m, c), n in sorted(seen.items()))
    print(f"\n{MESSAGES} messages; {summary}; health answered in {health_s * 1000:.0f} ms")
    assert not bad, f"INTERNAL/UNKNOWN answers: {Counter(bad)}"
    assert not tracebacks, tracebacks[:5]
    assert health.status == health_pb2.HealthCheckResponse.SERVING and health_s < 1.0


def garbled(rng: random.Random, valid: bytes) -> bytes:
    """Bytes that are mostly no message: random, a valid message cut short, or one flipped byte."""
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if kind == 1 and len(valid) > 1:
        return valid[: rng.randrange(1, len(valid))]
    if kind == 2 and valid:
        at = rng.randrange(len(valid))
        return valid[:at] + bytes([valid[at] ^ (1 << rng.randrange(8))]) + valid[at + 1 :]
    return b"\xff" * rng.randrange(1, 16)


@pytest.mark.timeout(300)
def test_bytes_that_are_no_message_get_invalid_argument_never_internal(make_gateway, caplog):  # noqa: F811
    """Below the messages: the raw bytes of every method's request garbled (cut short, a bit
    flipped, random). grpcio alone would answer INTERNAL; the gateway says INVALID_ARGUMENT."""
    address = make_gateway(data_roots="/nonexistent-data-root", s3_buckets="fuzz-bucket")
    rng = random.Random(SEED + 1)
    service = SERVICE
    seen: Counter[tuple[str, str]] = Counter()
    caplog.set_level(logging.WARNING)
    with grpc.insecure_channel(address) as channel:
        for number in range(600):
            method = service.methods[number % len(service.methods)]
            valid = generated(getattr(pb, method.input_type.name), rng).SerializeToString()
            data = garbled(rng, valid)
            path = f"/{service.full_name}/{method.name}"
            if method.client_streaming:
                call = (channel.stream_stream if method.server_streaming else channel.stream_unary)(path)
                request = iter([data])
            else:
                call = (channel.unary_stream if method.server_streaming else channel.unary_unary)(path)
                request = data
            try:
                answer = call(request, timeout=CALL_TIMEOUT_S)
                if method.server_streaming:
                    for _ in answer:
                        pass
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.INVALID_ARGUMENT and "valid" in (error.details() or ""):
                    assert error.details().startswith("the request is not a valid"), error.details()
            seen[(method.name, code.name)] += 1
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
    print("\n600 garbled requests; " + ", ".join(f"{m} {c}: {n}" for (m, c), n in sorted(seen.items())))
    assert not [key for key in seen if key[1] in {code.name for code in BAD_CODES}], seen
    assert seen.total() - sum(n for (_, c), n in seen.items() if c == "OK") > 300  # most were refused
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info and r.name.startswith(("gateway", "jobstore"))]
    assert not tracebacks, tracebacks[:5]
    assert health.status == health_pb2.HealthCheckResponse.SERVING
