"""One source of settings: docker-compose.yml and every kustomize directory give each
service exactly the PODIUM_* variables its settings class defines, no fewer and no more.

- Fewer: a setting added to a class must be set, visibly, in the deployment files
  (k8s/base/settings/*.env, read by both compose and kustomize), so that operators see
  it and its value in one place instead of discovering a default in the code.
- More: a variable no class reads is a typo or a removed setting and silently does
  nothing. Services without a settings class (Redis, Triton, the engine builder, Flower,
  Prometheus) get no PODIUM_* variable at all.
The values must also pass the class's own validation, and settings both services read
must agree between them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from podium.stores.jobstore.queue import QUEUE_NAME
from podium.stores.modelrepo import EngineSettings
from podium.web.settings import WebSettings
from tests.support.deploy import compose, kube
from worker.settings import WorkerSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = (REPO_ROOT / "docker-compose.yml", REPO_ROOT / "docker-compose.cpu.yml")
DOTENV = {"REDIS_PASSWORD": "0123abcd", "API_KEYS": "key-1"}
PREFIX = "PODIUM_"


# compose service name = k8s container name -> the settings class that service reads
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "worker": WorkerSettings,
    "engine-build": EngineSettings,
    "web": WebSettings,
}
# Deployments whose container of the same name runs the service.
DEPLOYMENT_OF = {"gateway": "gateway", "worker": "worker", "engine-build": "triton", "web": "web"}


def expected_variables(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    assert prefix.startswith(PREFIX), f"{settings.__name__} reads {prefix}* variables"
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def podium_variables(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(PREFIX)}


def assert_exact(where: str, settings: type[BaseSettings], env: dict[str, str]) -> None:
    given, expected = set(podium_variables(env)), expected_variables(settings)
    missing, unknown = sorted(expected - given), sorted(given - expected)
    assert not missing and not unknown, (
        f"{where}: settings drift against {settings.__name__}: "
        f"not set: {missing or 'none'}; not a setting: {unknown or 'none'}. "
        "Add or remove them in k8s/base/settings/*.env (docs/deploy.md, 'Settings')."
    )


def assert_valid(where: str, settings: type[BaseSettings], env: dict[str, str], monkeypatch) -> BaseSettings:
    """The class accepts the values (secrets replaced by stand-ins)."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in podium_variables(env).items():
        value = re.sub(r"\$\([A-Z_]+\)", "secret", value)  # k8s $(VAR) references
        monkeypatch.setenv(name, re.sub(r"^<[^>]+>$", "secret", value))  # secretKeyRef stand-ins
    try:
        return settings()
    except Exception as exc:  # noqa: BLE001 - report which file set what
        pytest.fail(f"{where}: {settings.__name__} rejects the deployed values: {exc}")


# --- docker-compose ---------------------------------------------------------------------


def _compose_services() -> dict[str, dict]:
    merged = compose.load_merged(*COMPOSE_FILES)
    return compose.interpolate(merged, DOTENV)["services"]


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_compose_sets_exactly_the_settings_of_each_service(service, monkeypatch):
    env = compose.service_environment(COMPOSE_FILES[0], _compose_services()[service])
    assert_exact(f"docker-compose.yml service {service}", SETTINGS[service], env)
    assert_valid(f"docker-compose.yml service {service}", SETTINGS[service], env, monkeypatch)


def test_compose_services_without_settings_get_no_podium_variables():
    for name, service in _compose_services().items():
        if name not in SETTINGS:
            env = compose.service_environment(COMPOSE_FILES[0], service)
            assert not podium_variables(env), f"{name} gets {sorted(podium_variables(env))}"


def test_compose_redis_url_carries_the_password_to_the_redis_service():
    for name in ("gateway", "worker"):
        env = compose.service_environment(COMPOSE_FILES[0], _compose_services()[name])
        assert env["PODIUM_REDIS_URL"] == f"redis://:{DOTENV['REDIS_PASSWORD']}@redis:6379/0", name


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("directory", kube.kustomize_dirs(), ids=lambda d: d.relative_to(kube.K8S).as_posix())
def test_k8s_sets_exactly_the_settings_of_each_service(directory, monkeypatch):
    docs = kube.render(directory)
    where = directory.relative_to(REPO_ROOT).as_posix()
    for service, settings in SETTINGS.items():
        deployment = DEPLOYMENT_OF[service]
        spec = kube.one(docs, "Deployment", deployment)["spec"]["template"]["spec"]
        if service not in {c["name"] for c in kube.containers(spec)}:
            assert service == "engine-build" and "overlays/gpu" not in where, f"{where}: no {service} container"
            continue  # no engine to build without a GPU
        c = kube.container(docs, "Deployment", deployment, service)
        env = kube.container_environment(docs, c)
        assert_exact(f"{where} Deployment/{deployment} container {service}", settings, env)
        assert_valid(f"{where} Deployment/{deployment} container {service}", settings, env, monkeypatch)
        if "PODIUM_REDIS_URL" in expected_variables(settings):
            assert env["PODIUM_REDIS_URL"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
            names = [e["name"] for e in c.get("env", [])]
            assert names.index("REDIS_PASSWORD") < names.index("PODIUM_REDIS_URL"), "$(VAR) needs VAR defined first"
    for kind_name, spec in kube.pod_specs(docs):
        for c in kube.containers(spec):
            if c["name"] not in SETTINGS:
                env = kube.container_environment(docs, c)
                assert not podium_variables(env), f"{where} {kind_name}/{c['name']}: {sorted(podium_variables(env))}"


def test_compose_and_k8s_read_the_same_settings_files():
    base = (kube.K8S / "base" / "kustomization.yaml").read_text(encoding="utf-8")
    services = compose.load(COMPOSE_FILES[0])["services"]
    for service in SETTINGS:
        files = [REPO_ROOT / f for f in services[service]["env_file"]]
        assert all(f.parent == kube.K8S / "base" / "settings" for f in files), files
        for f in files:
            assert f"settings/{f.name}" in base, f"kustomize does not read {f.name}"


# --- settings both services read, and names the settings must agree with --------------


def test_shared_settings_agree_between_gateway_and_worker(monkeypatch):
    services = _compose_services()
    shared = expected_variables(GatewaySettings) & expected_variables(WorkerSettings)
    gateway = compose.service_environment(COMPOSE_FILES[0], services["gateway"])
    worker = compose.service_environment(COMPOSE_FILES[0], services["worker"])
    differing = {k: (gateway[k], worker[k]) for k in shared if gateway[k] != worker[k]}
    assert not differing, f"gateway and worker disagree: {differing}"


def _settings(monkeypatch) -> tuple[GatewaySettings, WorkerSettings]:
    services = _compose_services()
    gateway_env = compose.service_environment(COMPOSE_FILES[0], services["gateway"])
    worker_env = compose.service_environment(COMPOSE_FILES[0], services["worker"])
    gateway = assert_valid("gateway", GatewaySettings, gateway_env, monkeypatch)
    worker = assert_valid("worker", WorkerSettings, worker_env, monkeypatch)
    return gateway, worker


def test_engine_build_builds_the_model_the_services_ask_triton_for(monkeypatch):
    gateway, _ = _settings(monkeypatch)
    build = _compose_services()["engine-build"]["command"]
    assert build[build.index("--model-name") + 1] == gateway.model_name
    checked = 0
    for directory in kube.kustomize_dirs():
        docs = kube.render(directory)
        for c in kube.containers(kube.one(docs, "Deployment", "triton")["spec"]["template"]["spec"]):
            argv = c.get("command", []) + c.get("args", [])
            if "build-engine" in argv:
                assert argv[argv.index("--model-name") + 1] == gateway.model_name
                checked += 1
    assert checked, "no k8s overlay builds the engine"


def test_workers_consume_the_queue_the_gateway_fills():
    assert _compose_services()["worker"]["command"].count(QUEUE_NAME) == 1
    for directory in kube.kustomize_dirs():
        command = kube.container(kube.render(directory), "Deployment", "worker", "worker")["command"]
        assert command[command.index("--queues") + 1] == QUEUE_NAME


def test_gateway_port_agrees_with_what_compose_publishes_and_k8s_probes(monkeypatch):
    gateway, _ = _settings(monkeypatch)
    assert gateway.host == "0.0.0.0", "in a container the gateway must listen on every interface"
    (published,) = _compose_services()["gateway"]["ports"]
    assert str(published).rsplit(":", 1)[1] == str(gateway.port)
    for directory in kube.kustomize_dirs():
        c = kube.container(kube.render(directory), "Deployment", "gateway", "gateway")
        assert c["ports"][0]["containerPort"] == gateway.port


def test_triton_url_names_the_triton_service_and_its_grpc_port(monkeypatch):
    gateway, worker = _settings(monkeypatch)
    assert gateway.triton_url == worker.triton_url == "triton:8001"
    assert "triton" in _compose_services()
    for directory in kube.kustomize_dirs():
        ports = {p["name"]: p["port"] for p in kube.one(kube.render(directory), "Service", "triton")["spec"]["ports"]}
        assert ports["grpc"] == 8001


def test_engine_cache_is_a_volume_so_engines_outlive_the_builder(monkeypatch):
    build = _compose_services()["engine-build"]
    cache_dir = str(
        assert_valid(
            "engine-build", SETTINGS["engine-build"], compose.service_environment(COMPOSE_FILES[0], build), monkeypatch
        ).cache_dir
    )
    assert any(str(v).endswith(f":{cache_dir}") for v in build["volumes"]), build["volumes"]
    for directory in kube.kustomize_dirs():
        docs = kube.render(directory)
        spec = kube.one(docs, "Deployment", "triton")["spec"]["template"]["spec"]
        for c in kube.containers(spec):
            if c["name"] == "engine-build":
                mount = next(m for m in c["volumeMounts"] if m["mountPath"] == cache_dir)
                volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
                assert "persistentVolumeClaim" in volume, f"{directory}: the engine cache dies with the pod"
