"""LocalCluster: Redis, Triton, Celery workers and the gateway as children of one process."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self, TypeVar

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.settings import GatewaySettings
from podium.cluster import triton
from podium.cluster.processes import ManagedProcess, ProcessFailed, free_port
from podium.cluster.run_lock import RunDirLock
from podium.cluster.settings import ClusterSettings
from podium.core.settings import ServiceSettings, read_settings
from podium.stores.jobstore import make_celery
from podium.stores.modelrepo.layout import CONFIG_FILENAME
from podium.web.settings import WebSettings
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

RESTART_BACKOFF_MAX_S = 30.0
LOOPBACK = "127.0.0.1"
S = TypeVar("S", bound=ServiceSettings)


@dataclass
class LocalCluster:
    settings: ClusterSettings
    processes: list[ManagedProcess] = field(default_factory=list)
    run_dir: Path = field(init=False)
    gateway_settings: GatewaySettings = field(init=False)
    worker_settings: WorkerSettings = field(init=False)
    _own_run_dir: bool = field(init=False, default=False)
    _lock: RunDirLock = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        if s.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="podium-up-"))
            self._own_run_dir = True
        else:
            self.run_dir = s.run_dir.resolve()
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = RunDirLock(self.run_dir)
        self.redis_port = s.redis_port or free_port()
        self.triton_grpc_port = s.triton_grpc_port or free_port()
        self.triton_http_port = s.triton_http_port or free_port()
        self.triton_metrics_port = s.triton_metrics_port or free_port()
        self.gateway_port = s.gateway_port or free_port()
        self.gateway_metrics_port = free_port() if s.metrics else 0
        self.web_port = (s.web_port or free_port()) if s.web else 0
        self.worker_metrics_ports = [free_port() if s.metrics else 0 for _ in range(s.workers)]
        # Read once, here: a bad PODIUM_* value stops `podium up` before anything starts.
        self.gateway_settings = self._service_settings(
            GatewaySettings,
            # The embedded default: every job's answers as Parquet files in the run directory.
            results_url=f"file://{self.run_dir / 'results'}",
        ).updated(port=self.gateway_port, metrics_port=self.gateway_metrics_port)
        self.worker_settings = self._service_settings(WorkerSettings)

    # --- addresses -------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return f"redis://{LOOPBACK}:{self.redis_port}/0"

    @property
    def triton_url(self) -> str:
        return f"{LOOPBACK}:{self.triton_grpc_port}"

    @property
    def gateway_address(self) -> str:
        """Where clients on this machine reach the gateway."""
        host = self.gateway_settings.host
        return f"{LOOPBACK if host in ('0.0.0.0', '::', '') else host}:{self.gateway_port}"

    @property
    def web_url(self) -> str:
        """The page's address on this machine ("" when `podium up` serves none)."""
        return f"http://{LOOPBACK}:{self.web_port}" if self.web_port else ""

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Each service's Prometheus endpoint, by process name."""
        urls = {"triton": f"http://{LOOPBACK}:{self.triton_metrics_port}/metrics"}
        if self.gateway_metrics_port:
            urls["gateway"] = f"http://{LOOPBACK}:{self.gateway_metrics_port}/metrics"
        for number, port in enumerate(self.worker_metrics_ports, start=1):
            if port:
                urls[f"worker-{number}"] = f"http://{LOOPBACK}:{port}/metrics"
        return urls

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

    # --- the children ----------------------------------------------------------------

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
        env = self.worker_settings.updated(metrics_port=port).as_environment()
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

    # --- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start every child in dependency order, each ready before the next one starts."""
        self._lock.acquire()  # before anything in the folder is touched
        try:
            for make in (self._redis, self._triton):
                self._start_one(make())
            workers = [self._worker(n) for n in range(1, self.settings.workers + 1)]
            for proc in workers:  # workers boot in parallel; each must answer a ping
                proc.start()
                self.processes.append(proc)
            for proc in workers:
                proc.wait_ready()
            self._start_one(self._gateway())
            if self.web_port:
                self._start_web()
        except BaseException:
            self.stop()
            raise

    def _start_web(self) -> None:
        """The page is a convenience: if it cannot start (its port taken), the cluster runs without it."""
        proc = self._web()
        try:
            self._start_one(proc)
        except ProcessFailed as exc:
            proc.stop(timeout_s=1)
            if proc in self.processes:
                self.processes.remove(proc)
            log.warning("the web page did not start, the cluster runs without it (`--web-port` picks another): %s", exc)
            self.web_port = 0

    def _start_one(self, proc: ManagedProcess) -> None:
        log.info("starting %s", proc.name)
        proc.start()
        self.processes.append(proc)
        proc.wait_ready()

    def process(self, name: str) -> ManagedProcess:
        return next(proc for proc in self.processes if proc.name == name)

    def dead(self) -> list[ManagedProcess]:
        return [proc for proc in self.processes if not proc.alive]

    def restart(self, proc: ManagedProcess) -> None:
        proc.stop(timeout_s=1)
        proc.start()
        proc.wait_ready()

    def supervise(self, should_stop, backoff_start_s: float = 1.0) -> None:
        """Restart children that die, with backoff, until should_stop() is true."""
        backoff: dict[str, float] = {}
        while not should_stop():
            for proc in self.dead():
                delay = backoff.get(proc.name, backoff_start_s)
                log.error(
                    "%s exited with code %s; restarting it in %.0f s (log: %s)",
                    proc.name,
                    proc.popen.returncode if proc.popen else None,
                    delay,
                    proc.log_path,
                )
                time.sleep(delay)
                try:
                    self.restart(proc)
                    log.info("%s is ready again", proc.name)
                    backoff[proc.name] = backoff_start_s
                except ProcessFailed as exc:
                    log.error("%s", exc)
                    backoff[proc.name] = min(delay * 2, RESTART_BACKOFF_MAX_S)
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop everything in reverse start order; no child outlives this call."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        self._lock.release()
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
