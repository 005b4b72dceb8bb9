"""Building and running the gateway's gRPC server."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.cluster_status import ClusterStatus, celery_ping
from gateway.compaction import Compactions
from gateway.interceptors import ApiKeyInterceptor, ErrorInterceptor
from gateway.metrics import start_metrics
from gateway.model_service import ModelService
from gateway.reconciler import Reconciler
from gateway.registration import add_podium_servicer
from gateway.retention import Retention
from gateway.service import JobService
from gateway.servicer import PodiumServicer
from gateway.settings import GatewaySettings
from gateway.webhook_sender import WebhookSender
from podium.core.errors import FailedPrecondition, InvalidArgument, PodiumError, Unavailable
from podium.core.proto import podium_pb2
from podium.core.settings import is_loopback, read_settings
from podium.stores.jobstore import ChunkQueue, JobStore, make_celery
from podium.stores.resultsink import open_sink

log = logging.getLogger(__name__)

SERVICE_NAME = podium_pb2.DESCRIPTOR.services_by_name["Podium"].full_name
# Health follows Redis within about this long (plus the ping's own time-out).
HEALTH_CHECK_INTERVAL_S = 1.0
HEALTH_PING_TIMEOUT_S = 1.0
# Keepalive finds dead peers (a client gone without a FIN); idle connections are closed.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.max_connection_idle_ms", 15 * 60_000),
    ("grpc.max_connection_age_ms", 24 * 3600_000),
    ("grpc.max_connection_age_grace_ms", 10 * 60_000),
)


@dataclass
class Gateway:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    health_store: JobStore  # its own Redis client, with a short time-out, for the health ping
    _stop: threading.Event

    def stop(self, grace_s: float) -> None:
        self._stop.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def check_exposure(settings: GatewaySettings) -> None:
    """Fail closed: a gateway reachable from a network must have API keys."""
    if settings.api_key_list() or settings.allow_unauthenticated or is_loopback(settings.host):
        return
    raise FailedPrecondition(
        f"the gateway would listen on {settings.host}, reachable from the network, without API keys",
        hint="set PODIUM_API_KEYS (comma-separated), or PODIUM_ALLOW_UNAUTHENTICATED=true if a proxy in front "
        "authenticates, or listen on 127.0.0.1 (PODIUM_HOST)",
    )


def build_gateway(settings: GatewaySettings) -> Gateway:
    """Create, bind and start the server; health turns SERVING once Redis answers."""
    check_exposure(settings)
    store = JobStore.from_url(settings.redis_url, settings.result_ttl_s)
    celery = make_celery(settings.redis_url, settings.visibility_timeout_s)
    queue = ChunkQueue(store, celery, settings.max_queued_chunks)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="podium-rpc"),
        interceptors=_interceptors(settings),
        maximum_concurrent_rpcs=settings.threads * 4,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            *CHANNEL_OPTIONS,
        ],
    )
    models = ModelService(settings)
    metrics = start_metrics(store, settings.metrics_host, settings.metrics_port)
    jobs = JobService(
        settings, store, queue, models, on_submitted=lambda mode: metrics.jobs_submitted.labels(mode=mode.value).inc()
    )
    health_store = JobStore.from_url(settings.redis_url, socket_timeout_s=HEALTH_PING_TIMEOUT_S)
    status = ClusterStatus(health_store.ping, models, celery_ping(celery))
    servicer = PodiumServicer(settings, jobs, models, status)
    add_podium_servicer(servicer, server)  # add_PodiumServicer_to_server, bad bytes INVALID_ARGUMENT
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, "grpc.health.v1.Health"), server)
    port = _add_port(server, settings)
    if port == 0:
        raise Unavailable(f"cannot listen on {settings.host}:{settings.port}: is the port in use?")
    stop = threading.Event()
    gateway = Gateway(server, port, health_servicer, health_store, stop)
    _serve_health(gateway)  # before the first call can arrive: health is never NOT_FOUND
    server.start()
    threading.Thread(target=_watch_redis, args=(gateway,), name="podium-health", daemon=True).start()
    reconciler = Reconciler(store, queue, settings.stall_timeout_s, settings.upload_stall_s)
    rounds = [reconciler.run_once, Compactions(store).run_once]
    if settings.results_url:  # the retention, and the temporary files of killed writers
        rounds.append(Retention(store, open_sink(settings.results_url), settings.results_retention_days).run_once)
    threading.Thread(
        target=_reconcile, args=(rounds, stop, settings.reconcile_interval_s), name="podium-reconcile", daemon=True
    ).start()
    sender = WebhookSender(
        store,
        settings.webhook_secret,
        settings.webhook_timeout_s,
        settings.webhook_retry_s,
        on_delivery=metrics.webhook,
        policy=settings.webhook_policy(),
    )
    threading.Thread(target=sender.run, args=(stop,), name="podium-webhooks", daemon=True).start()
    return gateway


def _interceptors(settings: GatewaySettings) -> list[grpc.ServerInterceptor]:
    keys = settings.api_key_list()
    return [ApiKeyInterceptor(keys), ErrorInterceptor()] if keys else [ErrorInterceptor()]


def _add_port(server: grpc.Server, settings: GatewaySettings) -> int:
    address = f"{settings.host}:{settings.port}"
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise InvalidArgument("set both PODIUM_TLS_CERT_FILE and PODIUM_TLS_KEY_FILE for TLS, or neither")
    if not settings.tls_cert_file:
        if not is_loopback(settings.host):
            log.warning(
                "listening on %s in plaintext: set PODIUM_TLS_CERT_FILE/KEY_FILE, or terminate TLS in front", address
            )
        return server.add_insecure_port(address)
    key = Path(settings.tls_key_file).read_bytes()
    chain = Path(settings.tls_cert_file).read_bytes()
    return server.add_secure_port(address, grpc.ssl_server_credentials([(key, chain)]))


def _serve_health(gateway: Gateway) -> bool:
    """Set health from Redis reachability (without Redis the gateway can do nothing); True if up."""
    try:
        ok = gateway.health_store.ping()
    except Exception:  # noqa: BLE001 - any failure means not serving
        ok = False
    status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        gateway.health.set(name, status)
    return ok


def _watch_redis(gateway: Gateway) -> None:
    while not gateway._stop.wait(HEALTH_CHECK_INTERVAL_S):
        _serve_health(gateway)


def _reconcile(rounds: list[Callable[[], object]], stop: threading.Event, interval_s: float) -> None:
    """The gateway's housekeeping: the reconciler, leftover compactions, the results' retention if set."""
    while not stop.wait(interval_s):
        for run_once in rounds:
            try:
                run_once()
            except Exception:
                log.warning("housekeeping round %s failed", getattr(run_once, "__qualname__", run_once), exc_info=True)


def main() -> None:
    try:
        settings = read_settings(GatewaySettings)
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        gateway = build_gateway(settings)
    except PodiumError as exc:
        sys.exit(f"podium gateway: error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""))
    log.info("Podium gateway listening on %s:%d", settings.host, gateway.port)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    log.info("stopping the gateway (%.0f s for running calls)", settings.shutdown_grace_s)
    gateway.stop(settings.shutdown_grace_s)
