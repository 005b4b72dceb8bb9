"""docker-compose.yml (GPU, the default) and docker-compose.cpu.yml, checked statically:
the Compose specification's schema, then what each service must do to work first time."""

from __future__ import annotations

import importlib.resources
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from podium.stores.jobstore.queue import QUEUE_NAME
from tests.support.deploy import compose

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CPU_COMPOSE_FILE = REPO_ROOT / "docker-compose.cpu.yml"
# What a user puts into .env (docs/deploy.md); the files refuse to start without it.
DOTENV = {"REDIS_PASSWORD": "0123abcd", "API_KEYS": "key-1"}
NGC_TRITON = re.compile(r"^nvcr\.io/nvidia/tritonserver:\d{2}\.\d{2}-py3$")
# Images built by this project's Dockerfiles; every other image must be pinned.
LOCAL_TAG = ":local"


def gpu_stack() -> dict:
    return compose.interpolate(compose.load(COMPOSE_FILE), DOTENV)


def cpu_stack() -> dict:
    return compose.interpolate(compose.load_merged(COMPOSE_FILE, CPU_COMPOSE_FILE), DOTENV)


def enabled(stack: dict) -> dict[str, dict]:
    """Services `docker compose up` starts without --profile."""
    return {name: s for name, s in stack["services"].items() if not s.get("profiles")}


def _gpu_devices(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def _requests_nvidia_gpu(service: dict) -> bool:
    return any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in _gpu_devices(service))


# --- the Compose specification --------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification():
    """The check CI names: check-jsonschema with its vendored compose-spec schema."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cpu_stack_validates_against_the_compose_specification():
    """check-jsonschema cannot read Compose's !reset tag, so the merged model is validated
    against the same vendored schema here."""
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose.load_merged(COMPOSE_FILE, CPU_COMPOSE_FILE)), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_compose_refuses_to_start_without_a_redis_password():
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        compose.interpolate(compose.load(COMPOSE_FILE), {})


# --- GPU by default -------------------------------------------------------------------


def test_triton_reserves_an_nvidia_gpu_and_is_pinned_to_an_ngc_release():
    triton = enabled(gpu_stack())["triton"]
    assert _requests_nvidia_gpu(triton), _gpu_devices(triton)
    assert NGC_TRITON.match(triton["image"]), triton["image"]


def test_engine_build_runs_once_on_the_gpu_before_triton():
    stack = enabled(gpu_stack())
    build, triton = stack["engine-build"], stack["triton"]
    assert _requests_nvidia_gpu(build)
    assert build.get("restart", "no") == "no"
    assert triton["depends_on"]["engine-build"]["condition"] == "service_completed_successfully"
    assert build["command"][:2] == ["podium", "build-engine"]
    # The builder writes into the model repository; Triton only reads it.
    build_mount = next(v for v in build["volumes"] if v["target"] == "/models")
    triton_mount = next(v for v in triton["volumes"] if v["target"] == "/models")
    assert build_mount["source"] == triton_mount["source"]
    assert not build_mount.get("read_only") and triton_mount.get("read_only") is True


def test_triton_has_shared_memory_and_a_readiness_health_check():
    triton = enabled(gpu_stack())["triton"]
    assert triton.get("shm_size")
    assert any("/v2/health/ready" in part for part in triton["healthcheck"]["test"])
    assert "--metrics-port=8002" in triton["command"] and "--allow-metrics=true" in triton["command"]


# --- the other services ---------------------------------------------------------------


def test_redis_persists_with_an_fsync_every_second_behind_a_password():
    redis = enabled(gpu_stack())["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert command[command.index("--requirepass") + 1] == DOTENV["REDIS_PASSWORD"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "ports" not in redis, "Redis must not be published"
    assert any(str(v).endswith(":/data") for v in redis["volumes"])
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])


def test_gateway_is_published_and_health_checked_through_grpc_health():
    gateway = enabled(gpu_stack())["gateway"]
    assert gateway["ports"], "the gateway is the one published service"
    assert gateway["healthcheck"]["test"][-1] == "gateway"
    assert any("healthcheck.py" in part for part in gateway["healthcheck"]["test"])
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"


def test_workers_are_replicated_health_checked_and_consume_the_podium_queue():
    worker = enabled(gpu_stack())["worker"]
    assert int(worker["deploy"]["replicas"]) >= 1
    assert worker["healthcheck"]["test"][-1] == "worker"
    command = worker["command"]
    assert command[command.index("--queues") + 1] == QUEUE_NAME
    # deploy/docker/healthcheck.py pings celery@<hostname>.
    assert command[command.index("--hostname") + 1] == "celery@%h"
    assert worker["depends_on"]["triton"]["condition"] == "service_healthy"


def test_only_the_gateway_is_reachable_from_other_machines():
    for name, service in gpu_stack()["services"].items():
        for port in service.get("ports", []):
            published_on_loopback = str(port).startswith("127.0.0.1:")
            assert name == "gateway" or published_on_loopback, f"{name} publishes {port} on every interface"


def test_images_from_registries_are_pinned():
    for name, service in compose.load_merged(COMPOSE_FILE, CPU_COMPOSE_FILE)["services"].items():
        image = service["image"]
        if image.endswith(LOCAL_TAG):
            assert "build" in service, f"{name}: {image} is local but has no build"
            continue
        tag = image.rpartition(":")[2]
        assert tag and tag != "latest" and "/" not in tag, f"{name}: {image} is not pinned"


# --- optional profiles ------------------------------------------------------------------


def test_flower_and_prometheus_are_optional_profiles():
    services = gpu_stack()["services"]
    assert "flower" in services["flower"]["profiles"]
    assert "monitoring" in services["prometheus"]["profiles"]
    # `--profile monitoring` must bring up what Prometheus scrapes.
    assert "monitoring" in services["flower"]["profiles"]
    assert set(enabled(gpu_stack())) == {"redis", "engine-build", "triton", "gateway", "worker", "web"}


def test_prometheus_scrapes_triton_and_worker_metrics():
    stack = gpu_stack()
    prometheus = stack["services"]["prometheus"]
    (config_ref,) = prometheus["configs"]
    assert config_ref["target"] == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load(stack["configs"][config_ref["source"]]["content"])
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", ()) for t in sc["targets"]}
    assert "triton:8002" in targets
    assert "flower:5555" in targets  # Flower exports the workers' and tasks' metrics
    assert "gateway:9464" in targets  # PODIUM_METRICS_PORT
    (workers,) = [job for job in config["scrape_configs"] if job["job_name"] == "podium-workers"]
    assert workers["dns_sd_configs"] == [{"names": ["worker"], "type": "A", "port": 9464}]


def test_minio_is_an_optional_profile_on_loopback():
    minio = gpu_stack()["services"]["minio"]
    assert minio["profiles"] == ["minio"]
    assert minio["ports"] and all(str(port).startswith("127.0.0.1:") for port in minio["ports"]), minio["ports"]
    assert minio["environment"]["MINIO_ROOT_PASSWORD"] == ""  # without one in .env, MinIO refuses to start


def test_grafana_is_provisioned_with_the_dashboard_kept_in_the_repository():
    stack = gpu_stack()
    grafana = stack["services"]["grafana"]
    assert "monitoring" in grafana["profiles"]
    sources = {ref["source"]: ref["target"] for ref in grafana["configs"]}
    files = {name: REPO_ROOT / stack["configs"][name]["file"] for name in sources}
    assert all(path.is_file() for path in files.values()), files
    dashboard = json.loads(files["grafana-podium-dashboard"].read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    for metric in ("podium_images_processed_total", "podium_image_stage_seconds_bucket", "podium_queue_depth"):
        assert metric in exprs, metric
    assert "nv_inference_count" in exprs and "nv_inference_exec_count" in exprs  # Triton's batch size
    provider = yaml.safe_load(files["grafana-dashboards"].read_text())
    assert provider["providers"][0]["options"]["path"] == str(Path(sources["grafana-podium-dashboard"]).parent)


# --- the CPU stack ----------------------------------------------------------------------


def test_cpu_stack_runs_the_same_services_without_a_gpu():
    gpu, cpu = enabled(gpu_stack()), enabled(cpu_stack())
    assert set(cpu) == set(gpu) - {"engine-build"}
    for name, service in cpu.items():
        assert not _gpu_devices(service), f"{name} still reserves a GPU"
    triton = cpu["triton"]
    assert triton["build"]["dockerfile"] == "deploy/docker/triton-cpu.Dockerfile"
    assert "engine-build" not in triton.get("depends_on", {})
    # Everything else is the GPU stack's.
    for name in set(cpu) - {"triton"}:
        assert cpu[name] == gpu[name], name
