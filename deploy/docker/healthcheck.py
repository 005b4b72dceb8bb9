"""Container health checks: ``python healthcheck.py gateway|worker|web``; exit 0 when healthy.

Both read the service's own settings class (the PODIUM_* variables the container already
has), so a check never disagrees with the service about ports or Redis.

- gateway: grpc.health.v1 Check on this container's port must answer SERVING. The gateway
  turns NOT_SERVING while Redis is unreachable, which is what a load balancer should see.
  With TLS on (PODIUM_TLS_CERT_FILE) the certificate names some public host, not
  127.0.0.1, so the check can only prove that the port completes a TLS handshake.
- worker: the Celery node ``celery@<hostname>`` (the name the worker command line sets
  with ``--hostname celery@%h``) must answer a ping through the broker. A worker that lost
  Redis, or whose main process hangs, fails it.
- web: the page's /healthz on this container's port answers 200 (the process serves HTTP).

Kept in the images (not in the project's packages) because only containers need it;
Kubernetes probes the gateway with its native gRPC probe and uses this for workers.
"""

from __future__ import annotations

import socket
import ssl
import sys

CHECK_TIMEOUT_S = 5.0


def gateway_healthy(timeout_s: float = CHECK_TIMEOUT_S) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from gateway.settings import GatewaySettings

    settings = GatewaySettings()
    if settings.tls_cert_file:
        return _tls_handshake(settings.port, timeout_s)
    address = f"127.0.0.1:{settings.port}"
    with grpc.insecure_channel(address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError as exc:
            print(f"gateway at {address}: {exc.code().name}", file=sys.stderr)
            return False
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        print(f"gateway at {address}: {status}", file=sys.stderr)
        return False
    return True


def _tls_handshake(port: int, timeout_s: float) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # liveness of the listener, not the certificate's validity
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return tls.selected_alpn_protocol() == "h2"
    except OSError as exc:
        print(f"gateway TLS handshake on port {port}: {exc}", file=sys.stderr)
        return False


def worker_healthy(timeout_s: float = CHECK_TIMEOUT_S) -> bool:
    from podium.stores.jobstore import make_celery
    from worker.settings import WorkerSettings

    settings = WorkerSettings()
    app = make_celery(settings.redis_url, settings.visibility_timeout_s)
    node = f"celery@{socket.gethostname()}"
    try:
        replies = app.control.ping(destination=[node], timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the broker means unhealthy
        print(f"worker {node}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return False
    finally:
        app.close()
    if not replies:
        print(f"worker {node}: no answer to ping within {timeout_s:.0f} s", file=sys.stderr)
        return False
    return True


def web_healthy(timeout_s: float = CHECK_TIMEOUT_S) -> bool:
    import urllib.request

    from podium.web.settings import WebSettings

    url = f"http://127.0.0.1:{WebSettings().port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            return answer.status == 200
    except OSError as exc:
        print(f"web page at {url}: {exc}", file=sys.stderr)
        return False


CHECKS = {"gateway": gateway_healthy, "worker": worker_healthy, "web": web_healthy}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {{{','.join(CHECKS)}}}", file=sys.stderr)
        return 2
    return 0 if CHECKS[argv[0]]() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
