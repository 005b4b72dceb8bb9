"""The images: every file a Dockerfile copies exists and reaches the build context, bases
are pinned, one NGC release everywhere, non-root users, and the helpers baked into them."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import subprocess
import sys
import tomllib
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from podium.cluster.processes import free_port
from tests.support import imports
from tests.support.deploy import compose, dockerfiles, kube

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "deploy" / "docker"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CPU_COMPOSE_FILE = REPO_ROOT / "docker-compose.cpu.yml"

# Each Dockerfile, the build context it is built from, and its targets (None: the last
# stage). docker-compose.yml builds the first three from the repository root; the model
# image is built from the exported model repository (see deploy/docker/model.Dockerfile).
BUILDS: dict[str, tuple[Path, list[str | None]]] = {
    "deploy/docker/Dockerfile": (REPO_ROOT, ["gateway", "worker", "web"]),
    "deploy/docker/engine-builder.Dockerfile": (REPO_ROOT, [None]),
    "deploy/docker/triton-cpu.Dockerfile": (REPO_ROOT, [None]),
    "deploy/docker/model.Dockerfile": (REPO_ROOT / "model_repository", [None]),
}
# The images that install the project and so must copy every package of it.
PROJECT_IMAGES = ("deploy/docker/Dockerfile", "deploy/docker/engine-builder.Dockerfile")
NGC_IMAGE = re.compile(r"nvcr\.io/nvidia/(?P<product>tritonserver|tensorrt):(?P<release>\d{2}\.\d{2})-py3\b")


def _dockerfiles() -> list[Path]:
    return sorted(p for p in DOCKER.iterdir() if p.name == "Dockerfile" or p.name.endswith(".Dockerfile"))


def _project_packages() -> set[str]:
    """Top-level packages the wheel holds, by pyproject.toml's setuptools find rule."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return {
        d.name
        for d in REPO_ROOT.iterdir()
        if (d / "__init__.py").is_file() and any(fnmatch.fnmatchcase(d.name, pattern) for pattern in include)
    }


def test_every_dockerfile_has_a_known_build_context():
    assert {p.relative_to(REPO_ROOT).as_posix() for p in _dockerfiles()} == set(BUILDS)


def test_compose_builds_match_the_known_contexts_and_targets():
    for path in (COMPOSE_FILE, CPU_COMPOSE_FILE):
        for name, service in compose.load(path)["services"].items():
            build = service.get("build")
            if not build:
                continue
            context = (path.parent / build["context"]).resolve()
            dockerfile = build["dockerfile"]
            assert dockerfile in BUILDS, f"{path.name}: {name} builds {dockerfile}, unknown to this test"
            expected_context, targets = BUILDS[dockerfile]
            assert context == expected_context.resolve(), f"{path.name}: {name} builds from {context}"
            assert build.get("target") in targets, f"{path.name}: {name} builds target {build.get('target')}"
            stage_names = {s.name for s in dockerfiles.stages(REPO_ROOT / dockerfile)}
            assert build.get("target") is None or build["target"] in stage_names


@pytest.mark.parametrize("dockerfile", sorted(BUILDS))
def test_every_copied_file_exists_and_reaches_the_build_context(dockerfile):
    context, _ = BUILDS[dockerfile]
    path = REPO_ROOT / dockerfile
    ignore = dockerfiles.DockerIgnore.for_build(context, path)
    copies = [c for c in dockerfiles.copies(path) if "from" not in c.flags]
    assert copies, f"{dockerfile} copies nothing from its context"
    for copy in copies:
        assert not copy.sources[0].startswith("http"), f"{dockerfile}:{copy.line}: ADD of a URL"
        for source in copy.sources:
            where = f"{dockerfile}:{copy.line}: {copy.keyword} {source}"
            assert (context / source).exists(), f"{where}: no such file in {context}"
            if source in (".", "./"):
                continue  # the whole context; an empty one is valid (a fresh clone's model_repository)
            assert ignore.included_files(context, source), f"{where}: excluded by .dockerignore"


def test_copied_folders_keep_their_python_sources():
    """A directory COPY must not lose modules to an over-eager ignore pattern."""
    ignore = dockerfiles.DockerIgnore((REPO_ROOT / ".dockerignore").read_text(encoding="utf-8"))
    for package in _project_packages():
        for module in (REPO_ROOT / package).rglob("*.py"):
            if "__pycache__" not in module.parts:
                assert not ignore.excluded(module.relative_to(REPO_ROOT).as_posix()), module


def test_the_build_context_leaves_out_environments_and_secrets():
    ignore = dockerfiles.DockerIgnore((REPO_ROOT / ".dockerignore").read_text(encoding="utf-8"))
    for path in (".venv/bin/python", ".git/config", ".env", ".podium/demo/x", "model_repository/m/1/model.onnx"):
        assert ignore.excluded(path), path


@pytest.mark.parametrize("dockerfile", PROJECT_IMAGES)
def test_project_images_copy_every_package_the_wheel_needs(dockerfile):
    copied = {
        source.rstrip("/")
        for copy in dockerfiles.copies(REPO_ROOT / dockerfile)
        if "from" not in copy.flags
        for source in copy.sources
        if (REPO_ROOT / source).is_dir()
    }
    missing = sorted(_project_packages() - copied)
    assert not missing, (
        f"{dockerfile} misses {missing}: add `COPY {missing[0]}/ {missing[0]}/` and `!{missing[0]}/` to .dockerignore"
    )
    # A package copied but not installed would be a typo or a removed package.
    assert copied - {"docker"} <= _project_packages(), f"{dockerfile} copies {sorted(copied - _project_packages())}"


def image_tag(reference: str) -> str:
    """The tag of an image reference ('' when it has none), ignoring any @digest."""
    without_digest = reference.split("@", 1)[0]
    name, _, tag = without_digest.rpartition(":")
    return tag if name and "/" not in tag else ""


@pytest.mark.parametrize("dockerfile", sorted(BUILDS))
def test_base_images_are_pinned(dockerfile):
    stage_names = set()
    for stage in dockerfiles.stages(REPO_ROOT / dockerfile):
        if stage.base not in stage_names:
            assert "$" not in stage.base, f"{dockerfile}: FROM {stage.base} depends on a build argument"
            assert image_tag(stage.base) not in ("", "latest"), f"{dockerfile}: FROM {stage.base} is not pinned"
        if stage.name:
            stage_names.add(stage.name)


def test_gateway_and_worker_build_on_one_python():
    bases = {s.base for s in dockerfiles.stages(DOCKER / "Dockerfile") if s.base.startswith("python:")}
    assert len(bases) == 1 and next(iter(bases)).startswith("python:3.11"), bases


def test_multi_stage_builds_keep_build_tools_out_of_the_runtime_image():
    for dockerfile in PROJECT_IMAGES:
        assert len(dockerfiles.stages(REPO_ROOT / dockerfile)) >= 2, dockerfile
        final_copies = [c for c in dockerfiles.copies(REPO_ROOT / dockerfile) if "from" in c.flags]
        assert final_copies, f"{dockerfile}: the runtime stage copies nothing from a build stage"


@pytest.mark.parametrize(("dockerfile", "target"), [(d, t) for d, (_, targets) in BUILDS.items() for t in targets])
def test_images_run_as_a_non_root_user(dockerfile, target):
    user = dockerfiles.effective_user(REPO_ROOT / dockerfile, target)
    assert user is not None, f"{dockerfile} ({target or 'final stage'}) sets no USER: it would run as root"
    assert user.split(":")[0] not in ("root", "0"), f"{dockerfile} ({target}) runs as {user}"


def _ngc_releases() -> dict[str, set[str]]:
    """Every NGC Triton/TensorRT image reference -> the YY.MM releases it names."""
    found: dict[str, set[str]] = {}
    texts = {p.relative_to(REPO_ROOT).as_posix(): p.read_text(encoding="utf-8") for p in _dockerfiles()}
    texts["docker-compose.yml"] = COMPOSE_FILE.read_text(encoding="utf-8")
    for directory in kube.kustomize_dirs():
        texts[directory.relative_to(REPO_ROOT).as_posix()] = kube.render_text(directory)
    for where, text in texts.items():
        for match in NGC_IMAGE.finditer(text):
            found.setdefault(match["release"], set()).add(f"{where} ({match['product']})")
    return found


def test_triton_and_the_engine_builder_come_from_one_ngc_release():
    """A TensorRT plan only loads in the TensorRT version that built it."""
    releases = _ngc_releases()
    assert len(releases) == 1, f"several NGC releases in use: {releases}"
    (users,) = releases.values()
    assert any("tensorrt" in u for u in users) and any("tritonserver" in u for u in users), users


def test_the_cpu_triton_image_keeps_the_stubs_buffers_in_the_heap():
    """The Python-backend stub gets the same glibc malloc settings as `podium up` gives it."""
    from podium.core.allocator import MALLOC_ENVIRONMENT

    env = {}
    for instruction in dockerfiles.instructions(DOCKER / "triton-cpu.Dockerfile"):
        if instruction.keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(instruction.arguments))
    assert {name: env.get(name) for name in MALLOC_ENVIRONMENT} == MALLOC_ENVIRONMENT


def test_engine_requirements_leave_out_torch():
    spec = importlib.util.spec_from_file_location("engine_requirements", DOCKER / "engine_requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    requirements = module.engine_requirements(REPO_ROOT / "pyproject.toml")
    names = {module.requirement_name(r) for r in requirements}
    assert {"onnx", "onnxruntime", "tritonclient"} <= names, requirements
    assert not names & {"torch", "torchvision", "scikit-image"}, requirements


# What each image leaves out, and the modules its command runs. Lazy imports count too:
# they fail when their function runs, in the container, at deploy time.
NOT_IN_IMAGE = {
    "gateway": {"torch", "torchvision", "skimage", "onnx", "onnxruntime", "matplotlib", "pytriton"},
    "worker": {"torch", "torchvision", "skimage", "onnx", "onnxruntime", "matplotlib", "pytriton"},
    "engine-builder": {"torch", "torchvision", "skimage", "matplotlib", "pytriton"},
    "web": {"torch", "torchvision", "skimage", "onnx", "onnxruntime", "matplotlib", "pytriton", "redis", "celery"},
}
IMAGE_ENTRY_MODULES = {
    "gateway": ["gateway.__main__", "gateway.server"],
    "worker": ["worker.celery_entry", "worker.app"],
    # `podium build-engine`: the command line as it starts, then what build-engine loads.
    "engine-builder": ["podium.cli.main", "engine", "modelrepo", "settings"],
    "web": ["podium.web.__main__", "podium.web.server", "podium.web.app", "podium.web.pages", "podium.web.api"],
}
# The command line's modules: only what they import at start counts (each command loads its own).
CLI_MODULES = frozenset(
    {
        "podium.cli.main",
        "podium.cli.operator.repository",
        "podium.cli.operator.local",
        "podium.cli.operator.training",
        "bench.command",
        "podium.cli.heatmaps",
    }
)


def _image_imports(image: str) -> dict[str, list[str]]:
    return imports.forbidden_imports(IMAGE_ENTRY_MODULES[image], NOT_IN_IMAGE[image], shallow=CLI_MODULES)


@pytest.mark.parametrize("image", sorted(IMAGE_ENTRY_MODULES))
def test_commands_import_nothing_their_image_leaves_out(image):
    assert not _image_imports(image), f"the {image} image would fail on: {_image_imports(image)}"


def test_build_engine_command_takes_the_flags_compose_and_k8s_pass():
    result = subprocess.run(
        [sys.executable, "-m", "podium", "build-engine", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in ("--model-repository", "--model-name"):
        assert flag in result.stdout, f"`podium build-engine` has no {flag}: docker-compose.yml and k8s pass it"


# --- deploy/docker/healthcheck.py -------------------------------------------------------------


@pytest.fixture(scope="module")
def healthcheck():
    spec = importlib.util.spec_from_file_location("podium_healthcheck", DOCKER / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(0).wait()


def test_gateway_health_check_follows_the_health_service(healthcheck, health_server, monkeypatch):
    port, servicer = health_server
    monkeypatch.setenv("PODIUM_PORT", str(port))
    monkeypatch.delenv("PODIUM_TLS_CERT_FILE", raising=False)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck.gateway_healthy(timeout_s=2)
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert not healthcheck.gateway_healthy(timeout_s=2)


def test_gateway_health_check_fails_without_a_gateway(healthcheck, monkeypatch):
    monkeypatch.setenv("PODIUM_PORT", str(free_port()))
    monkeypatch.delenv("PODIUM_TLS_CERT_FILE", raising=False)
    assert not healthcheck.gateway_healthy(timeout_s=1)


def test_health_check_rejects_unknown_services(healthcheck):
    assert healthcheck.main(["triton"]) == 2
