"""The real gateway (in-process) on a real Redis: bad requests get the right gRPC status."""

from __future__ import annotations

import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import GatewaySettings, build_gateway
from podium import PodiumClient, PodiumError, ResourceExhausted
from podium.cluster.processes import free_port
from podium.core.errors import FailedPrecondition
from podium.core.proto import podium_pb2 as pb
from podium.core.proto import podium_pb2_grpc as pb_grpc
from podium.core.proto.status import grpc_code


@pytest.fixture
def make_gateway(redis_client, redis_url, tmp_path):
    started = []

    def make(**overrides):
        settings = GatewaySettings(
            port=0, redis_url=redis_url, triton_url=f"127.0.0.1:{free_port()}", triton_timeout_s=2, **overrides
        )
        gateway = build_gateway(settings)
        started.append(gateway)
        return f"127.0.0.1:{gateway.port}"

    yield make
    for gateway in started:
        gateway.stop(0)


def status_of(call) -> grpc.StatusCode:
    """The gRPC code the call failed with, as the client reports it."""
    with pytest.raises(PodiumError) as info:
        call()
    assert "Traceback" not in info.value.message
    return grpc_code(info.value.status)


def upload(address: str, files: list[tuple[str, bytes]], spec: pb.JobSpec | None = None, metadata=()):
    def requests():
        if spec is not None:
            yield pb.UploadRequest(spec=spec)
        for path, data in files:
            yield pb.UploadRequest(file=pb.FileChunk(path=path, data=data, last=True))

    with grpc.insecure_channel(address) as channel:
        return pb_grpc.PodiumStub(channel).SubmitUpload(requests(), metadata=metadata, timeout=10)


def test_health_serves_once_redis_answers(make_gateway):
    address = make_gateway()
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "podium.v1.Podium"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


UNKNOWN_JOB = "0" * 32


def test_unknown_job_is_not_found_and_a_malformed_id_invalid(make_gateway):
    with PodiumClient(make_gateway()) as client:
        for call in (client.get_job, client.cancel, client.delete, lambda j: list(client.results(j))):
            assert status_of(lambda call=call: call(UNKNOWN_JOB)) == grpc.StatusCode.NOT_FOUND
        assert status_of(lambda: list(client.watch(UNKNOWN_JOB))) == grpc.StatusCode.NOT_FOUND
        for bad in ("nope", f"{UNKNOWN_JOB}:results", "x" * 5000):
            assert status_of(lambda bad=bad: client.get_job(bad)) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("files", "spec", "fragment"),
    [
        ([("a.jpg", b"x")], None, "must start with a spec"),
        ([("../etc/passwd", b"x")], pb.JobSpec(), "stay inside the folder"),
        ([("/etc/passwd", b"x")], pb.JobSpec(), "relative path"),
        ([("a.jpg", b"x"), ("a.jpg", b"y")], pb.JobSpec(), "sent twice"),
        ([("a.jpg", b"x")], pb.JobSpec(top_k=5000), "top_k"),
    ],
)
def test_malformed_uploads_are_invalid_argument(make_gateway, files, spec, fragment):
    address = make_gateway()
    with pytest.raises(grpc.RpcError) as info:
        upload(address, files, spec)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in info.value.details()


def test_limits_are_resource_exhausted(make_gateway):
    address = make_gateway(max_files_per_job=2)
    with pytest.raises(grpc.RpcError) as info:
        upload(address, [("a", b"1"), ("b", b"2"), ("c", b"3")], pb.JobSpec())
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at most 2 files" in info.value.details()

    address = make_gateway(max_upload_bytes=10)
    with pytest.raises(grpc.RpcError) as info:
        upload(address, [("a", b"x" * 11)], pb.JobSpec())
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_too_many_active_jobs_is_resource_exhausted(make_gateway, redis_client):
    address = make_gateway(max_active_jobs=1)
    job = upload(address, [("a.jpg", b"not an image")], pb.JobSpec())  # stays running: no worker here
    assert job.state == pb.JOB_STATE_RUNNING
    with pytest.raises(grpc.RpcError) as info:
        upload(address, [("b.jpg", b"x")], pb.JobSpec())
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with PodiumClient(address) as client:
        assert client.cancel(job.id).state == pb.JOB_STATE_CANCELLED
        # Once cancelled, every image still gets exactly one (error) line.
        results = list(client.results(job.id))
    assert [(r.path, r.status) for r in results] == [("a.jpg", pb.IMAGE_STATUS_ERROR)]
    assert "cancelled" in results[0].error


def test_oversize_file_fails_alone_and_the_job_goes_on(make_gateway):
    address = make_gateway(max_file_bytes=100)
    job = upload(address, [("big.jpg", b"x" * 101), ("small.jpg", b"x" * 10)], pb.JobSpec())
    assert (job.total, job.failed) == (2, 1)
    with PodiumClient(address) as client:
        (result,) = list(client.results(job.id))
    assert result.path == "big.jpg" and "larger than the limit" in result.error


def test_api_keys(make_gateway):
    address = make_gateway(api_keys="k1, k2")
    with PodiumClient(address) as client:
        assert status_of(lambda: client.get_job("x")) == grpc.StatusCode.UNAUTHENTICATED
    with PodiumClient(address, api_key="wrong") as client:
        assert status_of(lambda: client.get_job("x")) == grpc.StatusCode.UNAUTHENTICATED
    with PodiumClient(address, api_key="k2") as client:
        assert status_of(lambda: client.get_job(UNKNOWN_JOB)) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        upload(address, [("a.jpg", b"x")], pb.JobSpec())
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Health needs no key (probes).
    with grpc.insecure_channel(address) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_path_mode_is_confined_to_the_data_roots(make_gateway, tmp_path):
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    with PodiumClient(make_gateway()) as client:
        assert status_of(lambda: client.submit_path(str(root))) == grpc.StatusCode.FAILED_PRECONDITION
    with PodiumClient(make_gateway(data_roots=str(root))) as client:
        for bad in ("/etc", f"{root}/../../etc", "escape", f"{root}/escape"):
            assert status_of(lambda bad=bad: client.submit_path(bad)) == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert status_of(lambda: client.submit_path("missing")) == grpc.StatusCode.NOT_FOUND
        job = client.submit_path("photos")
        assert job.state == pb.JOB_STATE_COMPLETED and job.total == 0


def test_model_calls_without_triton_are_unavailable(make_gateway, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"whatever")
    with PodiumClient(make_gateway()) as client:
        assert status_of(client.classes) == grpc.StatusCode.UNAVAILABLE
        assert status_of(lambda: client.classify([image])) == grpc.StatusCode.UNAVAILABLE
        assert status_of(lambda: client.classify([])) == grpc.StatusCode.INVALID_ARGUMENT


def test_tls(make_gateway, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    address = make_gateway(tls_cert_file=str(cert), tls_key_file=str(key))
    with PodiumClient(address, tls_ca_file=str(cert)) as client:
        assert status_of(lambda: client.get_job(UNKNOWN_JOB)) == grpc.StatusCode.NOT_FOUND
    with PodiumClient(address, timeout_s=3) as plaintext:
        assert status_of(lambda: plaintext.get_job(UNKNOWN_JOB)) == grpc.StatusCode.UNAVAILABLE


def test_jobs_belong_to_their_key_and_admins_see_all(make_gateway):
    address = make_gateway(api_keys="alice,bob", admin_api_keys="root")
    job = upload(address, [("a.jpg", b"x")], pb.JobSpec(), metadata=(("x-api-key", "alice"),))
    with PodiumClient(address, api_key="bob") as bob:
        assert status_of(lambda: bob.get_job(job.id)) == grpc.StatusCode.NOT_FOUND
        assert status_of(lambda: bob.cancel(job.id)) == grpc.StatusCode.NOT_FOUND
    with PodiumClient(address, api_key="root") as admin:
        assert admin.get_job(job.id).id == job.id
    with PodiumClient(address, api_key="alice") as alice:
        alice.delete(job.id)
        assert status_of(lambda: alice.get_job(job.id)) == grpc.StatusCode.NOT_FOUND


def test_a_gateway_reachable_from_the_network_needs_keys(make_gateway, redis_url):
    with pytest.raises(FailedPrecondition, match="without API keys") as info:
        build_gateway(GatewaySettings(host="0.0.0.0", port=0, redis_url=redis_url))
    assert "PODIUM_API_KEYS" in info.value.hint
    make_gateway(host="0.0.0.0", api_keys="k")  # with keys it starts
    make_gateway(host="0.0.0.0", allow_unauthenticated=True)  # or when told to


def test_reflection_is_off_unless_asked_and_then_needs_a_key(make_gateway):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    def list_services(address: str, metadata=()):
        with grpc.insecure_channel(address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            return next(stub.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=5))

    with pytest.raises(grpc.RpcError) as info:
        list_services(make_gateway())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    address = make_gateway(reflection=True, api_keys="k")
    with pytest.raises(grpc.RpcError) as info:
        list_services(address)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    names = {s.name for s in list_services(address, (("x-api-key", "k"),)).list_services_response.service}
    assert "podium.v1.Podium" in names


def test_open_streams_are_bounded_per_key_and_short_calls_still_answer(make_gateway):
    address = make_gateway(max_streams_per_key=2, api_keys="k")
    job = upload(address, [("a.jpg", b"x")], pb.JobSpec(), metadata=(("x-api-key", "k"),))
    with PodiumClient(address, api_key="k") as client:
        watches = [client.watch(job.id) for _ in range(2)]
        for watch in watches:
            next(watch)  # each holds a slot while it waits for the job to change
        with pytest.raises(ResourceExhausted, match="2 streams open"):
            next(client.watch(job.id))
        assert client.get_job(job.id).id == job.id
        for watch in watches:
            watch.close()
