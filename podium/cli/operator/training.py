"""Commands that make and judge models: train, evaluate, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from podium.cli.failures import reported
from podium.cli.options import ApiKeyOpt, GatewayOpt, ModelOpt, connected, console, out
from podium.core.errors import InvalidArgument
from podium.core.modelmeta import ARCHITECTURE_NAMES, DEFAULT_ARCHITECTURE

TRAIN_HELP = (
    "Fine-tune a torchvision classifier (--arch, default resnet50) on DATA_DIR (train/, valid/, optional test/, one sub-folder per class; "
    "class index = sorted folder names, as ImageFolder) and write CKPT, CKPT.labels.txt, CKPT.history.json and "
    "CKPT.curves.png. `podium export --checkpoint CKPT` finds the labels beside it.\n\n"
    "Recipe (every value an option): AdamW lr 1e-3, weight decay 0.01, batch 128, 30 epochs; the head alone for "
    "--freeze-epochs with the backbone frozen, then --unfreeze (the last stage: layer4 of a ResNet, the last block of "
    "an EfficientNet's features) at lr x --backbone-lr-factor (0.1); "
    "ReduceLROnPlateau on validation accuracy (patience 2, factor 0.5); early stopping after 5 epochs without "
    "improvement, the best epoch kept; RandomResizedCrop to the network's crop, rotation ±10°, horizontal flip, "
    "ColorJitter 0.2 for training, the network's eval transform (what `podium export` then serves: Resize 256 + "
    "CenterCrop 224 for ResNet50, bicubic for EfficientNet) for validation and test. Seeded; AMP and "
    "channels_last on CUDA, which is used when present. --resume goes on from the last finished epoch."
)


def register(app: typer.Typer) -> None:
    app.command(help=TRAIN_HELP)(reported(train))
    app.command()(reported(evaluate))
    app.command()(reported(compare))


def train(
    data_dir: Annotated[Path, typer.Argument(help="train/, valid/ (and test/) folders, one sub-folder per class")],
    output: Annotated[Path, typer.Option("--output", help="The checkpoint to write (CKPT)")],
    arch: Annotated[str, typer.Option(help="The network: " + ", ".join(ARCHITECTURE_NAMES))] = DEFAULT_ARCHITECTURE,
    weights: Annotated[
        str, typer.Option(help="Backbone: a local torchvision ImageNet state_dict of --arch, imagenet, or none")
    ] = "imagenet",
    head: Annotated[
        str, typer.Option(help="sequential (Linear-ReLU-Dropout-Linear) or fc (one Linear)")
    ] = "sequential",
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    weight_decay: Annotated[float, typer.Option(min=0.0)] = 0.01,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.95)] = 0.3,
    freeze_epochs: Annotated[int, typer.Option(min=0, help="Epochs of the head alone")] = 3,
    unfreeze: Annotated[
        str,
        typer.Option(
            help="Backbone parts fine-tuned after: last (the last stage), a list (layer3,layer4 for ResNets; "
            "features.8,features.7 for EfficientNets), or all"
        ),
    ] = "last",
    backbone_lr_factor: Annotated[float, typer.Option(min=0.0)] = 0.1,
    patience: Annotated[int, typer.Option(min=1, help="Epochs without improvement before stopping")] = 5,
    lr_patience: Annotated[int, typer.Option(min=0, help="Epochs without improvement before halving lr")] = 2,
    seed: int = 0,
    workers: Annotated[int, typer.Option(min=0, help="Data-loading processes")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    max_images: Annotated[int, typer.Option(min=0, help="Use at most this many images per split (0: all)")] = 0,
    resume: Annotated[bool, typer.Option(help="Go on from CKPT.resume.pt, written after every epoch")] = False,
) -> None:
    """Fine-tune a torchvision classifier on a labelled folder (see --help)."""
    from podium.train import EpochFigures, TrainOptions, train_model  # loads torch

    options = TrainOptions(
        arch=arch, weights=weights, head=head, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        dropout=dropout, freeze_epochs=freeze_epochs, unfreeze=unfreeze, backbone_lr_factor=backbone_lr_factor,
        patience=patience, lr_patience=lr_patience, seed=seed, workers=workers, device=device, max_images=max_images,
    )  # fmt: skip
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[figures]}"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("starting", total=None, figures="")

        def on_batch(phase: str, done: int, total: int, loss: float, accuracy: float, rate: float) -> None:
            figures = f"loss {loss:.3f}  acc {accuracy:.1%}  {rate:.1f} img/s"
            progress.update(task, description=phase, completed=done, total=total, figures=figures)

        def on_epoch(epoch: EpochFigures) -> None:
            progress.console.print(
                f"epoch {epoch.epoch:3d} ({epoch.phase}): train loss {epoch.train_loss:.3f} acc "
                f"{epoch.train_accuracy:.1%} | valid loss {epoch.valid_loss:.3f} acc {epoch.valid_accuracy:.1%} | "
                f"lr {epoch.lr:.2g} | {epoch.images_per_s:.1f} img/s, {epoch.seconds:.0f} s",
                highlight=False,
                markup=False,
            )

        result = train_model(data_dir, output, options, resume=resume, on_batch=on_batch, on_epoch=on_epoch)
    ended = "stopped early" if result.stopped_early else "done"
    out.print(
        f"{ended}: best epoch {result.best_epoch}, validation accuracy {result.best_valid_accuracy:.2%}; "
        f"checkpoint {escape(str(result.checkpoint))} ({len(result.classes)} classes)"
    )
    if result.test_accuracy is not None:
        out.print(f"test accuracy (best epoch, served transform): {result.test_accuracy:.2%}")
    out.print(f"next: podium export --checkpoint {escape(str(result.checkpoint))}", highlight=False)


def evaluate(
    folder: Annotated[Path | None, typer.Argument(help="Labelled folder to upload: one sub-folder per class")] = None,
    report: Annotated[
        Path, typer.Option("--report", help="Folder for report.json, confusion_matrix.png, report.html")
    ] = Path("evaluation"),
    server_path: Annotated[
        str | None, typer.Option(help="Instead of uploading: a labelled folder the workers can read")
    ] = None,
    model: ModelOpt = "",
    ignore_unknown: Annotated[bool, typer.Option(help="Leave out folders that are no class of the model")] = False,
    model_repository: Annotated[
        Path | None, typer.Option(help="Record the result beside the model version here, for `podium models`")
    ] = None,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Classify a labelled folder through the running service and judge every answer."""
    from podium.evaluate import Source, evaluate_through_service, record_in_repository, report_json, write_report_files

    if (folder is None) == (server_path is None):
        raise InvalidArgument("give a labelled FOLDER to upload or --server-path PATH, not both")
    source = Source(folder=folder, server_path=server_path)
    with connected(gateway, api_key) as client, console.status("classifying") as status:
        evaluation, _ = evaluate_through_service(
            client,
            source,
            model=model,
            ignore_unknown=ignore_unknown,
            on_progress=lambda job: status.update(f"classifying: {job.succeeded + job.failed}/{job.total}"),
        )
    document = report_json(evaluation)
    written = write_report_files(report, document, folder)
    _print_evaluation(document, written)
    recorded = record_in_repository(model_repository, document, source.shown) if model_repository else None
    if recorded:
        console.print(f"recorded in {escape(str(recorded))}")


def _print_evaluation(document: dict, written: list[Path]) -> None:
    model, (low, high) = document["model"], document["accuracy_ci95"]
    network = f", {model['architecture']}" if model.get("architecture") else ""
    table = Table(title=f"{model['name']} version {model['version']} ({model['target']}{network})", show_header=False)
    table.add_row("images", f"{document['n_images']} ({document['n_failed']} failed)")
    if document.get("images_per_s"):
        table.add_row("through the service", f"{document['images_per_s']:.1f} images/s (upload to last answer)")
    table.add_row("accuracy", f"{document['accuracy']:.2%}  (95% interval {low:.1%}–{high:.1%})")
    table.add_row("top-5 accuracy", f"{document['top5_accuracy']:.2%}")
    table.add_row("macro F1 / weighted F1", f"{document['macro_avg']['f1']:.3f} / {document['weighted_avg']['f1']:.3f}")
    for pair in document["most_confused"][:5]:
        table.add_row("confused", escape(f"{pair['true']} → {pair['predicted']} ({pair['count']})"))
    out.print(table)
    out.print("wrote " + ", ".join(escape(str(path)) for path in written))


def compare(
    report_a: Annotated[Path, typer.Argument(help="report.json (or its folder) of the first evaluation")],
    report_b: Annotated[Path, typer.Argument(help="report.json (or its folder) of the second")],
    show: Annotated[int, typer.Option(help="Flipped images to list (-1: all)")] = 20,
) -> None:
    """Two evaluations of the same images side by side: accuracies, agreement, flipped answers."""
    from podium.evaluate import compare_reports, read_report

    comparison = compare_reports(read_report(report_a), read_report(report_b))
    table = Table(title="comparison")
    for column in ("", "model", "network", "accuracy", "95% interval", "images", "images/s"):
        table.add_column(column)
    for label, report in (("A", comparison.a), ("B", comparison.b)):
        model, (low, high) = report["model"], report["accuracy_ci95"]
        name = f"{model['name']}:{model['version']} ({model['target']})"
        rate = report.get("images_per_s")
        table.add_row(
            label,
            escape(name),
            escape(model.get("architecture") or "?"),
            f"{report['accuracy']:.2%}",
            f"{low:.1%}–{high:.1%}",
            str(report["n_images"]),
            f"{rate:.1f}" if rate else "-",
        )
    out.print(table)
    out.print(
        f"B − A: {comparison.difference * 100:+.2f} points; top-1 agreement {comparison.agreement:.2%} on "
        f"{comparison.common} common images; {len(comparison.fixed)} fixed, {len(comparison.broken)} broken, "
        f"{len(comparison.changed)} wrong both ways"
    )
    flips = [("fixed", f) for f in comparison.fixed] + [("broken", f) for f in comparison.broken]
    if flips and show:
        listed = Table(title="images whose answer flipped")
        for column in ("change", "path", "true", "A", "B"):
            listed.add_column(column, overflow="fold")
        for change, flip in flips if show < 0 else flips[:show]:
            listed.add_row(change, escape(flip.path), escape(flip.true), escape(flip.a), escape(flip.b))
        out.print(listed)
