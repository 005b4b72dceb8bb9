"""``podium train``: fine-tune a torchvision classifier (ResNet50 by default) on a labelled folder,
keep the best epoch, write what export reads.

The recipe (every value an option): AdamW (lr 1e-3, weight decay 0.01), batch 128, up to
30 epochs; a first phase trains the head alone with the backbone frozen, then ``layer4``
(or the stages ``--unfreeze`` names) joins at a tenth of the learning rate;
ReduceLROnPlateau on validation accuracy (patience 2, factor 0.5); early stopping after 5
epochs without improvement, the best epoch kept. Seeded; AMP and channels_last on CUDA.
Each epoch leaves ``CKPT.resume.pt`` behind, so ``--resume`` goes on after an interruption.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from export.labels import labels_path_for
from podium.core.errors import InvalidArgument
from podium.train.data import DataSet, ImageDataset, Split, find_data_set, transform_of
from podium.train.network import build_network, head_prefix, set_trainable, trainable_stages
from podium.train.report import write_curves, write_history

RESUME_SUFFIX = ".resume.pt"


@dataclass(frozen=True)
class TrainOptions:
    arch: str = "resnet50"  # a network of export.architectures
    weights: str = "imagenet"  # PATH, imagenet or none
    head: str = "sequential"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    dropout: float = 0.3
    freeze_epochs: int = 3  # head only, backbone frozen
    unfreeze: str = "last"  # the network's last stage (layer4 for ResNets)
    backbone_lr_factor: float = 0.1
    lr_patience: int = 2
    lr_factor: float = 0.5
    patience: int = 5  # early stopping
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    max_images: int = 0  # per split, 0: all (for smoke runs)


@dataclass
class EpochFigures:
    epoch: int
    phase: str
    train_loss: float
    train_accuracy: float
    valid_loss: float
    valid_accuracy: float
    lr: float
    seconds: float
    images_per_s: float


@dataclass
class TrainResult:
    checkpoint: Path
    classes: list[str]
    best_epoch: int
    best_valid_accuracy: float
    test_accuracy: float | None
    history: list[EpochFigures] = field(default_factory=list)
    stopped_early: bool = False


@dataclass
class _State:
    """What --resume restores: everything the next epoch depends on."""

    epoch: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[EpochFigures] = field(default_factory=list)


EpochProgress = Callable[[str, int, int, float, float, float], None]  # phase, done, total, loss, acc, img/s


def train_model(
    data_dir: Path,
    output: Path,
    options: TrainOptions,
    *,
    resume: bool = False,
    on_batch: EpochProgress | None = None,
    on_epoch: Callable[[EpochFigures], None] | None = None,
) -> TrainResult:
    """Train, write CKPT (the best epoch's state_dict), CKPT.labels.txt, history and curves."""
    _check(options)
    data = find_data_set(data_dir)
    device = _device(options.device)
    _seed(options.seed)
    model = build_network(len(data.classes), options.head, options.weights, options.dropout, options.arch).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    loaders = _loaders(data, options, device)
    state, best_weights = _State(), copy.deepcopy(model.state_dict())
    resume_path = Path(f"{output}{RESUME_SUFFIX}")
    optimizer, scheduler = _phase(model, options, state.epoch)
    if resume and resume_path.is_file():
        state, optimizer, scheduler, best_weights = _restore(resume_path, model, options)
    output.parent.mkdir(parents=True, exist_ok=True)
    labels_path_for(output).write_text("".join(f"{name}\n" for name in data.classes), encoding="utf-8")
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    stopped_early = False
    while state.epoch < options.epochs:
        if state.epoch == options.freeze_epochs:  # the second phase: part of the backbone joins
            optimizer, scheduler = _phase(model, options, state.epoch)
        figures = _epoch(model, loaders, optimizer, scaler, device, state.epoch, options, on_batch)
        scheduler.step(figures.valid_accuracy)
        state.history.append(figures)
        state.epoch += 1
        if figures.valid_accuracy > state.best_accuracy:
            state.best_accuracy, state.best_epoch, state.stale_epochs = figures.valid_accuracy, figures.epoch, 0
            best_weights = copy.deepcopy(model.state_dict())
            _save_weights(best_weights, output)
        else:
            state.stale_epochs += 1
        _save_resume(resume_path, model, optimizer, scheduler, state, best_weights)
        write_history(output, state.history, data.classes, options)
        if on_epoch:
            on_epoch(figures)
        if state.stale_epochs >= options.patience:
            stopped_early = True
            break
    model.load_state_dict(best_weights)
    _save_weights(best_weights, output)
    write_curves(output, state.history)
    test = _test_accuracy(model, data.test, options, device) if data.test else None
    resume_path.unlink(missing_ok=True)
    return TrainResult(output, data.classes, state.best_epoch, state.best_accuracy, test, state.history, stopped_early)


def _check(options: TrainOptions) -> None:
    if options.epochs < 1 or options.batch_size < 1:
        raise InvalidArgument("--epochs and --batch-size must be at least 1")
    trainable_stages(options.unfreeze, options.arch)


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument("--device cuda, but torch finds no CUDA GPU here; use --device cpu or auto")
    return torch.device(choice)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _loaders(data: DataSet, options: TrainOptions, device: torch.device) -> dict[str, DataLoader]:
    def loader(split: Split, augment: bool) -> DataLoader:
        if options.max_images:
            split = Split(split.name, split.samples[: options.max_images])
        generator = torch.Generator().manual_seed(options.seed)
        return DataLoader(
            ImageDataset(split, augment, transform_of(options.arch)),
            batch_size=options.batch_size,
            shuffle=augment,
            num_workers=options.workers,
            pin_memory=device.type == "cuda",
            generator=generator,
            persistent_workers=options.workers > 0,
        )

    return {"train": loader(data.train, True), "valid": loader(data.valid, False)}


def _phase(model: nn.Module, options: TrainOptions, epoch: int):
    """The optimizer and scheduler of the phase ``epoch`` falls in."""
    head = [p for name, p in model.named_parameters() if name.startswith(head_prefix(options.arch))]
    if epoch < options.freeze_epochs:
        set_trainable(model, [], options.arch)
        groups = [{"params": head, "lr": options.lr}]
    else:
        backbone = set_trainable(model, trainable_stages(options.unfreeze, options.arch), options.arch)
        groups = [
            {"params": head, "lr": options.lr},
            {"params": backbone, "lr": options.lr * options.backbone_lr_factor},
        ]
    optimizer = torch.optim.AdamW(groups, weight_decay=options.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=options.lr_factor, patience=options.lr_patience
    )
    return optimizer, scheduler


def _epoch(model, loaders, optimizer, scaler, device, epoch, options, on_batch) -> EpochFigures:
    phase = "head" if epoch < options.freeze_epochs else f"fine-tune {options.unfreeze}"
    started = time.monotonic()
    train_loss, train_accuracy, seen = _run(model, loaders["train"], device, optimizer, scaler, phase, on_batch)
    seconds = time.monotonic() - started
    valid_loss, valid_accuracy, _ = _run(model, loaders["valid"], device, None, None, "validation", on_batch)
    return EpochFigures(
        epoch=epoch + 1,
        phase=phase,
        train_loss=train_loss,
        train_accuracy=train_accuracy,
        valid_loss=valid_loss,
        valid_accuracy=valid_accuracy,
        lr=optimizer.param_groups[0]["lr"],
        seconds=time.monotonic() - started,
        images_per_s=seen / max(seconds, 1e-9),
    )


def _run(model, loader, device, optimizer, scaler, label, on_batch) -> tuple[float, float, int]:
    """One pass over ``loader``: trains when an optimizer is given; returns (loss, accuracy, images)."""
    training = optimizer is not None
    model.train(training)
    if training:
        _frozen_batchnorm_in_eval(model)
    criterion = nn.CrossEntropyLoss()
    total_loss, correct, seen, started = 0.0, 0, 0, time.monotonic()
    with torch.set_grad_enabled(training):
        for batch, (images, labels) in enumerate(loader, start=1):
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.to(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                logits = model(images)
                loss = criterion(logits, labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            total_loss += float(loss.detach()) * len(labels)
            correct += int((logits.argmax(dim=1) == labels).sum())
            seen += len(labels)
            if on_batch:
                rate = seen / max(time.monotonic() - started, 1e-9)
                on_batch(label, batch, len(loader), total_loss / seen, correct / seen, rate)
    return total_loss / max(seen, 1), correct / max(seen, 1), seen


def _frozen_batchnorm_in_eval(model: nn.Module) -> None:
    """BatchNorm layers whose weights are frozen keep their running statistics (ImageNet's)."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
            module.eval()


def _test_accuracy(model, split: Split, options: TrainOptions, device) -> float:
    dataset = ImageDataset(split, augment=False, spec=transform_of(options.arch))
    loader = DataLoader(dataset, batch_size=options.batch_size, num_workers=options.workers)
    return _run(model, loader, device, None, None, "test", None)[1]


def _save_weights(weights: dict, output: Path) -> None:
    """The state_dict `podium export` reads, written beside and renamed over (never half-written)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    torch.save({key: value.detach().cpu() for key, value in weights.items()}, temporary)
    temporary.replace(output)


def _save_resume(path: Path, model, optimizer, scheduler, state: _State, best_weights: dict) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "best_weights": best_weights,
            "state": {**asdict(state), "history": [asdict(h) for h in state.history]},
            "rng": torch.get_rng_state(),
        },
        temporary,
    )
    temporary.replace(path)


def _restore(path: Path, model, options: TrainOptions):
    saved = torch.load(path, map_location="cpu", weights_only=False)  # our own file: optimizer state included
    model.load_state_dict(saved["model"])
    fields = saved["state"]
    state = _State(
        epoch=fields["epoch"],
        best_accuracy=fields["best_accuracy"],
        best_epoch=fields["best_epoch"],
        stale_epochs=fields["stale_epochs"],
        history=[EpochFigures(**h) for h in fields["history"]],
    )
    optimizer, scheduler = _phase(model, options, state.epoch - 1 if state.epoch else 0)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    return state, optimizer, scheduler, saved["best_weights"]
