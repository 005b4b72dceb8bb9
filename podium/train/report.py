"""What a training run leaves beside its checkpoint: CKPT.history.json and CKPT.curves.png."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

HISTORY_SUFFIX = ".history.json"
CURVES_SUFFIX = ".curves.png"


def write_history(output: Path, history: list, classes: list[str], options) -> Path:
    """Per-epoch train/valid loss and accuracy, learning rate and time, with the run's options."""
    path = Path(f"{output}{HISTORY_SUFFIX}")
    document = {"classes": classes, "options": asdict(options), "epochs": [asdict(epoch) for epoch in history]}
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def write_curves(output: Path, history: list) -> Path:
    """Loss and accuracy per epoch, training and validation, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(f"{output}{CURVES_SUFFIX}")
    epochs = [h.epoch for h in history]
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axes, key, title in ((loss, "loss", "loss"), (accuracy, "accuracy", "accuracy")):
        axes.plot(epochs, [getattr(h, f"train_{key}") for h in history], marker="o", label="train")
        axes.plot(epochs, [getattr(h, f"valid_{key}") for h in history], marker="o", label="valid")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    accuracy.set_ylim(0, 1)
    figure.suptitle(f"{Path(output).name}: {len(history)} epochs")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
