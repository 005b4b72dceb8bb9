"""Commands over a model repository: export, build-engine, models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from podium.cli.failures import reported
from podium.cli.options import console, out
from podium.core.errors import InvalidArgument
from podium.core.modelmeta import ARCHITECTURE_NAMES, DEFAULT_MODEL_NAME

TARGET_HELP = (
    "cpu: ONNX FP32 on Triton's Python backend (embedded default); cpu-int8: static INT8 ONNX on the same path "
    "(needs --calibration); gpu: TensorRT FP16 plan (pending until `podium build-engine` on the GPU); "
    "cpu-ort / gpu-ort: ONNX Runtime backend of NGC Triton images (gpu-ort with TensorRT acceleration); "
    "gpu-dali: gpu plus JPEG decoding on the GPU (DALI) and an ensemble NAME_encoded that takes the files' bytes"
)
RepositoryOpt = Annotated[Path, typer.Option(help="Triton model repository")]


def register(app: typer.Typer) -> None:
    app.command()(reported(export))
    app.command("build-engine", help=BUILD_ENGINE_HELP)(reported(build_engine))
    app.command()(reported(models))


def export(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="PyTorch state_dict of a torchvision classifier (its network is read from the keys)"),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="The network, when its keys do not say it (default: detected; resnet50 with --untrained). "
            "Known: " + ", ".join(ARCHITECTURE_NAMES),
            show_default=False,
        ),
    ] = None,
    resize: Annotated[
        int | None, typer.Option(min=1, help="Resize the shorter side to this (default: the network's transform)")
    ] = None,
    crop: Annotated[
        int | None, typer.Option(min=16, help="Centre crop, the model's input size (default: the network's)")
    ] = None,
    interpolation: Annotated[
        str | None, typer.Option(help="bilinear or bicubic (default: the network's; EfficientNet B0-B4: bicubic)")
    ] = None,
    grayscale: Annotated[
        bool | None,
        typer.Option(
            "--grayscale/--no-grayscale",
            help="Grey first, as torchvision's Grayscale (default: when the network's first convolution takes one "
            "channel)",
            show_default=False,
        ),
    ] = None,
    mean: Annotated[
        str | None,
        typer.Option(help="Normalisation mean per channel, r,g,b in 0..1, or one value for all (default: ImageNet's)"),
    ] = None,
    std: Annotated[str | None, typer.Option(help="Normalisation std per channel, r,g,b (default: ImageNet's)")] = None,
    onnx: Annotated[
        Path | None,
        typer.Option(
            help="Serve this ONNX classifier as brought (float32 NCHW or NHWC, normalised input; torch.onnx.export, "
            "tf2onnx, yolo export) instead of a checkpoint; needs --labels; no maps",
            show_default=False,
        ),
    ] = None,
    outputs: Annotated[
        str, typer.Option(help="--onnx: what its first output holds, logits or probabilities")
    ] = "logits",
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Class names, one per line (default: CKPT.labels.txt beside the checkpoint, else the 100 sports classes)"
        ),
    ] = None,
    labels_from: Annotated[
        Path | None, typer.Option(help="Take the class names from a dataset folder, as ImageFolder does")
    ] = None,
    target: Annotated[str, typer.Option(help=TARGET_HELP)] = "cpu",
    model_repository: RepositoryOpt = Path("model_repository"),
    model_name: Annotated[str, typer.Option(help="The model's name in Triton")] = DEFAULT_MODEL_NAME,
    untrained: Annotated[bool, typer.Option(help="No checkpoint: a seeded untrained model, labelled as such")] = False,
    verify_images: Annotated[
        Path | None, typer.Option(help="Folder of images to check ONNX against PyTorch on")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="cpu-int8: folder of photographs to calibrate on (every 5th held out)")
    ] = None,
    force: Annotated[bool, typer.Option(help="cpu-int8: install even below 98% top-1 agreement")] = False,
    max_batch_size: Annotated[
        int | None, typer.Option(min=1, help="Triton max_batch_size (default: 32 on CPU, the engine profile's on GPU)")
    ] = None,
) -> None:
    """Export a trained checkpoint (or an ONNX classifier) into a Triton model repository (a new version each time)."""
    transform = {
        "resize": resize,
        "crop": crop,
        "interpolation": interpolation,
        "grayscale": grayscale,
        "mean": _channels("--mean", mean),
        "std": _channels("--std", std),
    }
    if onnx is not None:
        if checkpoint is not None or untrained or arch or calibration or labels_from:
            raise InvalidArgument(
                "--onnx serves that file as brought: drop --checkpoint, --untrained, --arch, --calibration and --labels-from"
            )
        _export_onnx(
            onnx, labels, target, model_repository, model_name, outputs, transform, verify_images, max_batch_size
        )
        return
    if (checkpoint is None) == (not untrained):
        raise InvalidArgument("give either --checkpoint CKPT, --untrained or --onnx FILE")
    from export import export_model  # loads torch

    with console.status("exporting") as status:
        result = export_model(
            checkpoint=checkpoint,
            labels=labels,
            labels_from=labels_from,
            target=target,
            model_repository=model_repository,
            model_name=model_name,
            untrained=untrained,
            verify_images=verify_images,
            calibration=calibration,
            force=force,
            max_batch_size=max_batch_size,
            progress=lambda message: status.update(escape(message)),
            arch=arch,
            preprocessing=transform,
        )
    _print_export(result, model_repository)


def _export_onnx(onnx, labels, target, model_repository, model_name, outputs, transform, verify_images, batch) -> None:
    if labels is None:
        raise InvalidArgument("--onnx needs --labels FILE: the class names, one per line, in the model's output order")
    from export import export_onnx  # loads onnxruntime

    with console.status("exporting") as status:
        result = export_onnx(
            onnx_path=onnx,
            model_repository=model_repository,
            labels=labels,
            target=target,
            model_name=model_name,
            outputs=outputs,
            preprocessing=transform,
            verify_images=verify_images,
            max_batch_size=batch,
            progress=lambda message: status.update(escape(message)),
        )
    _print_export(result, model_repository)


def _channels(flag: str, text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) == 1:  # one value for every channel (a grey network's)
        values = values * 3
    if len(values) != 3:
        raise InvalidArgument(f"{flag} takes three numbers, one per channel (r,g,b), or one for all (got {text!r})")
    return values


def _print_export(result, model_repository: Path) -> None:
    meta, fidelity = result.metadata, result.fidelity
    pre = meta.preprocessing
    console.print(
        f"[green]exported[/] {meta.model_name} version {result.version} ({meta.target}, {meta.architecture}, "
        f"{len(meta.classes)} classes) to {escape(str(result.model_dir))}"
    )
    console.print(f"network: {meta.architecture}, head {meta.head}", markup=False)
    grey = ", grey" if pre.grayscale else ""
    console.print(
        f"preprocessing: resize {pre.resize}, crop {pre.crop}, {pre.interpolation}{grey}, mean {pre.mean}, std {pre.std}",
        markup=False,
    )
    if fidelity:
        console.print(
            f"{fidelity.get('model', 'ONNX')} vs {fidelity.get('reference', 'PyTorch')} on "
            f"{len(fidelity.get('images', []))} images: top-1 agreement "
            f"{fidelity.get('top1_agreement', 0):.1%}, max |Δp| {fidelity.get('max_abs_diff', 0):.2e}",
            markup=False,
        )
    if "int8_speedup" in fidelity:
        console.print(f"INT8 runs {fidelity['int8_speedup']:.2f}x the FP32 model's onnxruntime throughput here")
    if fidelity.get("forced"):
        console.print("[bold yellow]warning:[/] installed with --force below the INT8 agreement threshold")
    if result.pending:
        console.print(
            "[bold yellow]not servable yet:[/] the version waits for its TensorRT engine; run `podium build-engine "
            f"--model-repository {escape(str(model_repository))}` on the serving GPU before starting Triton"
        )
    if meta.untrained:
        console.print("[bold yellow]warning:[/] UNTRAINED model: its answers are meaningless (use --checkpoint)")


BUILD_ENGINE_HELP = (
    "Build the TensorRT FP16 engine of every GPU model version, on this GPU, and install it.\n\n"
    "Run it on the serving GPU with the TensorRT of the Triton image's NGC release (the compose engine-builder "
    "service and the k8s init container do), before Triton starts: a plan only runs on the GPU model and TensorRT "
    "version that built it. Without a CUDA GPU and TensorRT it stops at once and says so.\n\n"
    "For each version exported with --target gpu (and each installed one built for another GPU or TensorRT): "
    "TensorRT's ONNX parser reads model.onnx (explicit batch); one optimisation profile for 'images' with batch "
    "min 1 / opt / max = the config's max_batch_size; FP16; a workspace memory limit; a timing cache reused "
    "across builds.\n\n"
    "The engine is then run against onnxruntime FP32 on the check images (those the export verified on, or "
    "--images DIR); top-1 agreement and max |Δp| go into fidelity.json, and the engine is installed as model.plan "
    "only at or above the threshold (default 99.5%). Only then does the pending version become visible to "
    "Triton.\n\n"
    "Engines are cached under (ONNX sha256, GPU name and compute capability, TensorRT version, build recipe).\n\n"
    "Settings: PODIUM_ENGINE_MAX_BATCH_SIZE (64, read by the export), PODIUM_ENGINE_OPT_BATCH_SIZE (32), "
    "PODIUM_ENGINE_WORKSPACE_MIB (4096), PODIUM_ENGINE_MIN_TOP1_AGREEMENT (0.995), PODIUM_ENGINE_CACHE_DIR "
    "(~/.cache/podium/engines)."
)


def build_engine(
    model_repository: Annotated[Path, typer.Option(help="Triton model repository holding GPU exports")] = Path(
        "model_repository"
    ),
    model_name: Annotated[str | None, typer.Option(help="Only this model (default: every model)")] = None,
    images: Annotated[
        Path | None,
        typer.Option(help="Check the engine on these photographs (default: the images the export verified on)"),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Engine and timing cache (default: $PODIUM_ENGINE_CACHE_DIR or ~/.cache)")
    ] = None,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Top-1 agreement with onnxruntime FP32 required (default: build.json's, 0.995)"
        ),
    ] = None,
) -> None:
    """Build, check and install the TensorRT engines of GPU model versions (see --help)."""
    from podium.core.settings import read_settings
    from podium.engine import build_engines
    from podium.stores.modelrepo import EngineSettings

    engine_settings = read_settings(EngineSettings)
    outcomes = build_engines(
        model_repository,
        cache_dir=cache_dir or engine_settings.cache_dir,
        tensorrt_version=engine_settings.tensorrt_version,
        model_name=model_name,
        images=images,
        min_top1_agreement=min_agreement,
        progress=lambda message: console.print(message, highlight=False, markup=False),
    )
    if not outcomes:
        console.print(
            f"no GPU model versions in {escape(str(model_repository))}: export one with `podium export --target gpu`"
        )
    for outcome in outcomes:
        figures = outcome.fidelity.get("engine", outcome.fidelity)
        agreement = figures.get("top1_agreement")
        shown = f", top-1 agreement {agreement:.1%}" if agreement is not None else ""
        out.print(f"{outcome.model} version {outcome.version}: {outcome.action}{shown}", highlight=False, markup=False)


def models(model_repository: RepositoryOpt = Path("model_repository")) -> None:
    """List the models in a repository: versions, target, network and transform, classes, checkpoint, fidelity."""
    from podium.stores.modelrepo import list_models
    from podium.stores.modelrepo.cpu_kernels import this_cpu

    summaries = list_models(model_repository)
    if not summaries:
        console.print(f"no models in {escape(str(model_repository))}: export one with `podium export`")
        return
    cpu = this_cpu()
    table = Table(
        title=f"models in {escape(str(model_repository))}",
        caption=f"this CPU's INT8 kernels: {cpu['kernel_path']} ({cpu['arithmetic']})",
    )
    for column in (
        "model",
        "version",
        "target",
        "network",
        "transform",
        "classes",
        "checkpoint",
        "top-1 agr.",
        "max |Δp|",
        "evaluation",
        "INT8 kernels checked",
        "status",
    ):
        table.add_column(column)
    for s in summaries:
        checkpoint = "[yellow]UNTRAINED[/]" if s.untrained else (s.checkpoint_sha256 or "?")[:12]
        version = f"{s.version} (served)" if s.served else str(s.version)
        agreement = f"{s.top1_agreement:.1%}" if s.top1_agreement is not None else "-"
        diff = f"{s.max_abs_diff:.1e}" if s.max_abs_diff is not None else "-"
        target = f"{s.target} ({s.precision})"
        table.add_row(
            escape(s.model),
            version,
            target,
            s.architecture,
            s.transform,
            str(s.classes),
            checkpoint,
            agreement,
            diff,
            _evaluated(s),
            _kernels(s, cpu["arithmetic"]),
            s.status,
        )
    out.print(table)


def _kernels(summary, arithmetic: str) -> str:
    """The kernel paths an INT8 version was checked on; flagged when this CPU's is not among them."""
    checks = summary.kernel_checks
    if not checks:
        return "-"
    shown = ", ".join(f"{c['kernel_path']}{' (emulated)' if c.get('emulated') else ''}" for c in checks)
    if arithmetic in {c["arithmetic"] for c in checks}:
        return escape(shown)
    return f"{escape(shown)} [yellow](not this CPU's {arithmetic})[/]"


def _evaluated(summary) -> str:
    """The version's last `podium evaluate`: accuracy with its interval, images, date."""
    found = summary.evaluation
    if not found:
        return "-"
    low, high = found["accuracy_ci95"]
    return f"{found['accuracy']:.1%} ({low:.1%}–{high:.1%}), {found['n_images']} img, {found['evaluated_at'][:10]}"
