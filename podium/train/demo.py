"""The demo's own model, when no checkpoint is given: the whole loop on this machine's CPU.

Nothing can be downloaded, so the demo teaches a small network something it can check: a
labelled folder is made from the bundled photographs (one class per photograph; crops,
flips, small rotations and colour changes of it), a MobileNetV3-Small is trained on it
from scratch (`podium train`'s recipe, every layer at once), exported (network detected
from the checkpoint), and, once the cluster is up, evaluated on held-out crops through
the service. A second run reuses the trained checkpoint (delete DIR/model to train again).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from podium.samples import bundled_photos
from podium.samples.labelled import write_labelled_set

DEMO_MODEL_NAME = "demo_photos"
DEMO_ARCH = "mobilenet_v3_small"
# 16 classes x (32 + 8 + 8) crops; 8 epochs take ~1-1.5 minutes on 2 cores.
SPLITS = {"train": 32, "valid": 8, "test": 8}
EPOCHS = 8
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
COLOUR_CHANGE = 0.2
SEED = 1


@dataclass(frozen=True)
class DemoModel:
    checkpoint: Path
    data: Path  # train/, valid/, test/ of the labelled crops
    classes: list[str]
    valid_accuracy: float | None  # None: trained by an earlier run
    test_accuracy: float | None


def demo_model(directory: Path, console: Console) -> DemoModel:
    """Make (or find) the demo's labelled crops and its trained checkpoint under ``directory``."""
    data, checkpoint = directory / "training", directory / "model" / "demo.pt"
    classes = list(bundled_photos())
    if not (data / "test").is_dir():
        with console.status("making a labelled folder from the bundled photographs"):
            write_labelled_set(data, tuple(classes), SPLITS, seed=SEED, colour=COLOUR_CHANGE)
        images = sum(SPLITS.values()) * len(classes)
        console.print(f"data: {images} crops of {len(classes)} photographs in {data} (one class per photograph)")
    if checkpoint.is_file():
        console.print(f"model: {checkpoint}, trained by an earlier run (delete {checkpoint.parent} to train again)")
        return DemoModel(checkpoint, data, classes, None, None)
    result = _train(data, checkpoint, console)
    return DemoModel(checkpoint, data, result.classes, result.best_valid_accuracy, result.test_accuracy)


def _train(data: Path, checkpoint: Path, console: Console):
    from podium.train import TrainOptions, train_model  # loads torch

    options = TrainOptions(
        arch=DEMO_ARCH,
        weights="none",
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        lr=LEARNING_RATE,
        freeze_epochs=0,
        unfreeze="all",
        patience=EPOCHS,
        seed=SEED,
    )
    with console.status(f"training a {DEMO_ARCH} from scratch on the CPU ({EPOCHS} epochs)") as status:

        def on_batch(phase: str, done: int, total: int, loss: float, accuracy: float, rate: float) -> None:
            status.update(f"training {DEMO_ARCH}: {phase} batch {done}/{total}, loss {loss:.2f}, {rate:.0f} img/s")

        def on_epoch(epoch) -> None:
            console.print(
                f"epoch {epoch.epoch}/{EPOCHS}: train accuracy {epoch.train_accuracy:.1%}, "
                f"validation {epoch.valid_accuracy:.1%} ({epoch.seconds:.0f} s)"
            )

        result = train_model(data, checkpoint, options, on_batch=on_batch, on_epoch=on_epoch)
    console.print(
        f"trained: best epoch {result.best_epoch}, held-out test crops {result.test_accuracy:.1%} in PyTorch "
        f"(chance: {1 / len(result.classes):.1%}); checkpoint {checkpoint}"
    )
    return result
