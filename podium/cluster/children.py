"""How `podium up` starts each child (Redis, Triton, the workers, the gateway, the web page)
and knows it is ready."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path
from typing import TypeVar

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from podium.cluster import triton
from podium.cluster.processes import ManagedProcess, ProcessFailed
from podium.cluster.settings import ClusterSettings
from podium.core.settings import ServiceSettings, read_settings
from podium.stores.jobstore import make_celery
from podium.stores.modelrepo.layout import CONFIG_FILENAME
from podium.web.settings import WebSettings

LOOPBACK = "127.0.0.1"
S = TypeVar("S", bound=ServiceSettings)


class ClusterChildren:
    """How each child is started and known ready (a role of ``LocalCluster``, whose
    addresses and run directory it uses)."""

    settings: ClusterSettings
    run_dir: Path

    def _service_settings(self, settings_class: type[S], **defaults: object) -> S:
        """The service's settings as its own process would read them, plus the cluster's addresses;
        ``defaults``: the cluster's own values of fields that neither variables nor `service` set."""
        chosen = read_settings(settings_class, **self.settings.service)  # PODIUM_* variables, then `service`
        owned: dict[str, object] = {"redis_url": self.redis_url, "triton_url": self.triton_url}
        owned |= {name: value for name, value in defaults.items() if name not in chosen.model_fields_set}
        if "max_queued_chunks" not in chosen.model_fields_set:
            # One job may keep every worker busy; a new job still waits behind at most
            # this many chunks of each running job.
            owned["max_queued_chunks"] = max(2, self.settings.workers)
        return chosen.updated(**owned)

    def _redis(self) -> ManagedProcess:
        data = self.run_dir / "redis"
        data.mkdir(exist_ok=True)
        argv = [
            self.settings.redis_server,
            "--port",
            str(self.redis_port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory",
            self.settings.redis_maxmemory,
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
        ]
        return ManagedProcess("redis", argv, self.run_dir / "redis.log", self._redis_ready, ready_timeout_s=30)

    def _redis_ready(self) -> bool:
        client = redis.Redis(port=self.redis_port, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def _triton(self) -> ManagedProcess:
        repo = self.settings.model_repository.resolve()
        model_name = self.gateway_settings.model_name
        if not (repo / model_name / CONFIG_FILENAME).exists():
            raise ProcessFailed(
                f"no model {model_name!r} in {repo}: run `podium export --untrained "
                f"--model-repository {self.settings.model_repository}` (or with --checkpoint) first"
            )
        backends = triton.prepare_backends(self.run_dir / "triton-backends")
        argv = triton.tritonserver_argv(
            repo, backends, self.triton_grpc_port, self.triton_http_port, self.triton_metrics_port
        )
        return ManagedProcess(
            "triton",
            argv,
            self.run_dir / "triton.log",
            lambda: triton.triton_ready(self.triton_http_port),
            env=triton.tritonserver_env(),
            ready_timeout_s=self.settings.ready_timeout_s,
        )

    def _worker(self, number: int) -> ManagedProcess:
        hostname = f"podium-worker-{number}@{self.gateway_port}"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.celery_entry",
            "worker",
            "--hostname",
            hostname,
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--queues",
            "podium",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
            *self.settings.worker_args,
        ]
        return ManagedProcess(
            f"worker-{number}",
            argv,
            self.run_dir / f"worker-{number}.log",
            lambda: self._worker_ready(hostname),
            env=self._worker_environment(number),
            ready_timeout_s=self.settings.ready_timeout_s,
        )

    def _worker_environment(self, number: int) -> dict[str, str]:
        port = self.worker_metrics_ports[number - 1]
        cpus = self.worker_cpus[number - 1] or None  # None: as the worker settings say
        env = self.worker_settings.updated(metrics_port=port, cpu_affinity=cpus).as_environment()
        if port:  # each worker's pool processes write their samples here (worker.metrics)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.run_dir / f"metrics-worker-{number}")
        return env

    def _worker_ready(self, hostname: str) -> bool:
        app = make_celery(self.redis_url)
        try:
            return bool(app.control.ping(destination=[hostname], timeout=1.0))
        finally:
            app.close()

    def _gateway(self) -> ManagedProcess:
        argv = [sys.executable, "-m", "gateway"]
        return ManagedProcess(
            "gateway",
            argv,
            self.run_dir / "gateway.log",
            self._gateway_ready,
            env=self.gateway_settings.as_environment(),
            ready_timeout_s=60,
        )

    def _gateway_ready(self) -> bool:
        with grpc.insecure_channel(self.gateway_address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return response.status == health_pb2.HealthCheckResponse.SERVING

    def _web(self) -> ManagedProcess:
        web = read_settings(WebSettings)
        env = {
            "PODIUM_WEB_GATEWAY": self.gateway_address,
            "PODIUM_WEB_PORT": str(self.web_port),
            # The page's own PODIUM_WEB_* variables apply; its thumbnails go with the run's files by default.
            "PODIUM_WEB_CACHE_DIR": str(web.cache_dir if "cache_dir" in web.model_fields_set else self.run_dir / "web"),
        }
        return ManagedProcess(
            "web",
            [sys.executable, "-m", "podium.web"],
            self.run_dir / "web.log",
            self._web_ready,
            env=env,
            ready_timeout_s=60,
        )

    def _web_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.web_url}/healthz", timeout=1) as answer:
            return answer.status == 200
