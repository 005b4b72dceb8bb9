"""LocalCluster: Redis, Triton, Celery workers and the gateway as children of one process."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from gateway.settings import GatewaySettings
from podium.cluster.children import LOOPBACK, ClusterChildren
from podium.cluster.processes import ManagedProcess, ProcessFailed, free_port
from podium.cluster.run_lock import RunDirLock
from podium.cluster.settings import ClusterSettings
from podium.cluster.triton_watch import PROBE_INTERVAL_S, TritonWatch, model_request_counts
from podium.core.cpus import cpu_shares, format_cpu_list, usable_cpus
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

RESTART_BACKOFF_MAX_S = 30.0


@dataclass
class LocalCluster(ClusterChildren):
    """Redis, Triton, the workers, the gateway and the web page as supervised children;
    how each starts is ``children``."""

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
        # Each worker its own CPUs (podium.core.cpus), unless pinning is off, the operator chose
        # them, or the system cannot pin; "" leaves a worker's setting as it is.
        cpus = usable_cpus() if s.pin_workers and not self.worker_settings.cpu_affinity else []
        self.worker_cpus = (
            [format_cpu_list(share) for share in cpu_shares(cpus, s.workers)] if cpus else [""] * s.workers
        )

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

    # --- the children ----------------------------------------------------------------

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

    def supervise(self, should_stop, backoff_start_s: float = 1.0, watch: TritonWatch | None = None) -> None:
        """Restart children that die, and a Triton that fails every request to a model
        (``podium.cluster.triton_watch``), with backoff, until should_stop() is true."""
        backoff: dict[str, float] = {}
        watch = watch or TritonWatch()
        next_probe = time.monotonic()
        while not should_stop():
            for proc in self.dead():
                code = proc.popen.returncode if proc.popen else None
                self._restart_with_backoff(proc, f"exited with code {code}", backoff, backoff_start_s)
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + PROBE_INTERVAL_S
                model = self._wedged_model(watch)
                if model is not None:
                    why = (
                        f"has failed every request to {model} for {watch.window:.0f} s (as when the model's "
                        "Python-backend stub died, which a freeze may do)"
                    )
                    self._restart_with_backoff(self.process("triton"), why, backoff, backoff_start_s)
                    watch.restarted()
            time.sleep(0.5)

    def _wedged_model(self, watch: TritonWatch) -> str | None:
        triton = next((proc for proc in self.processes if proc.name == "triton"), None)
        if triton is None or not triton.alive:
            return None
        try:
            counts = model_request_counts(self.triton_http_port)
        except (OSError, ValueError):
            return None  # starting, frozen or busy: only a dead one is restarted for that
        return watch.wedged(time.monotonic(), counts)

    def _restart_with_backoff(self, proc: ManagedProcess, why: str, backoff: dict[str, float], start_s: float) -> None:
        delay = backoff.get(proc.name, start_s)
        log.error("%s %s; restarting it in %.0f s (log: %s)", proc.name, why, delay, proc.log_path)
        time.sleep(delay)
        try:
            self.restart(proc)
            log.info("%s is ready again", proc.name)
            backoff[proc.name] = start_s
        except ProcessFailed as exc:
            log.error("%s", exc)
            backoff[proc.name] = min(delay * 2, RESTART_BACKOFF_MAX_S)

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
