"""Building and running the gateway's gRPC server."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from errors import InvalidArgument, Unavailable
from gateway.interceptors import ApiKeyInterceptor, ErrorInterceptor
from gateway.reconciler import Reconciler
from gateway.service import JobService
from gateway.servicer import PodiumServicer
from gateway.settings import GatewaySettings
from jobstore import ChunkQueue, JobStore, make_celery
from proto import podium_pb2, podium_pb2_grpc
from settings import read_settings

log = logging.getLogger(__name__)

SERVICE_NAME = podium_pb2.DESCRIPTOR.services_by_name["Podium"].full_name
HEALTH_CHECK_INTERVAL_S = 5.0
STOP_GRACE_S = 5.0


@dataclass
class Gateway:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    store: JobStore
    _stop: threading.Event

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        self._stop.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def build_gateway(settings: GatewaySettings) -> Gateway:
    """Create, bind and start the server; health turns SERVING once Redis answers."""
    store = JobStore.from_url(settings.redis_url, settings.result_ttl_s)
    celery = make_celery(settings.redis_url, settings.visibility_timeout_s)
    queue = ChunkQueue(store, celery, settings.max_queued_chunks)
    service = JobService(settings, store, queue)
    interceptors = [ErrorInterceptor()]
    if settings.api_key_list():
        interceptors.insert(0, ApiKeyInterceptor(settings.api_key_list()))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="podium-rpc"),
        interceptors=interceptors,
        maximum_concurrent_rpcs=settings.threads * 4,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ],
    )
    podium_pb2_grpc.add_PodiumServicer_to_server(PodiumServicer(service), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, "grpc.health.v1.Health"), server)
    port = _add_port(server, settings)
    if port == 0:
        raise Unavailable(f"cannot listen on {settings.host}:{settings.port}: is the port in use?")
    stop = threading.Event()
    gateway = Gateway(server, port, health_servicer, store, stop)
    _serve_health(gateway)  # before the first call can arrive: health is never NOT_FOUND
    server.start()
    threading.Thread(target=_watch_redis, args=(gateway,), name="podium-health", daemon=True).start()
    reconciler = Reconciler(store, queue, settings.stall_timeout_s, settings.upload_stall_s)
    threading.Thread(
        target=_reconcile, args=(reconciler, stop, settings.reconcile_interval_s), name="podium-reconcile", daemon=True
    ).start()
    return gateway


def _add_port(server: grpc.Server, settings: GatewaySettings) -> int:
    address = f"{settings.host}:{settings.port}"
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise InvalidArgument("set both PODIUM_TLS_CERT_FILE and PODIUM_TLS_KEY_FILE for TLS, or neither")
    if not settings.tls_cert_file:
        return server.add_insecure_port(address)
    key = Path(settings.tls_key_file).read_bytes()
    chain = Path(settings.tls_cert_file).read_bytes()
    return server.add_secure_port(address, grpc.ssl_server_credentials([(key, chain)]))


def _serve_health(gateway: Gateway) -> bool:
    """Set health from Redis reachability (without Redis the gateway can do nothing); True if up."""
    try:
        ok = gateway.store.ping()
    except Exception:  # noqa: BLE001 - any failure means not serving
        ok = False
    status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        gateway.health.set(name, status)
    return ok


def _watch_redis(gateway: Gateway) -> None:
    while not gateway._stop.wait(HEALTH_CHECK_INTERVAL_S if _serve_health(gateway) else 0.5):
        pass


def _reconcile(reconciler: Reconciler, stop: threading.Event, interval_s: float) -> None:
    while not stop.wait(interval_s):
        try:
            reconciler.run_once()
        except Exception:
            log.warning("reconciler round failed", exc_info=True)


def main() -> None:
    settings = read_settings(GatewaySettings)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateway = build_gateway(settings)
    log.info("Podium gateway listening on %s:%d", settings.host, gateway.port)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    log.info("stopping the gateway")
    gateway.stop()
