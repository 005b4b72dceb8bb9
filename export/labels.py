"""Class labels: one class name per non-empty line of a text file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from export.errors import ExportError
from podium.core.errors import PodiumError
from podium.core.imaging import class_folders

# The 100 classes of the "100 Sports Image Classification" data set, in ImageFolder order.
DEFAULT_LABELS = Path(__file__).with_name("sports100_classes.txt")


LABELS_SUFFIX = ".labels.txt"


def labels_path_for(checkpoint: Path) -> Path:
    """Where `podium train` writes a checkpoint's class names: CKPT.labels.txt beside it."""
    return Path(f"{checkpoint}{LABELS_SUFFIX}")


def labels_beside(checkpoint: Path | None) -> Path | None:
    """CKPT.labels.txt when it exists beside the checkpoint, else None."""
    if checkpoint is None:
        return None
    path = labels_path_for(Path(checkpoint))
    return path if path.is_file() else None


def read_labels(path: Path) -> list[str]:
    """Read class names, one per non-empty line (surrounding whitespace stripped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportError(f"labels file {path} does not exist; pass --labels FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"cannot read labels file {path}: {exc}") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ExportError(f"labels file {path} holds no class names (expected one per line)")
    duplicates = sorted(name for name, count in Counter(labels).items() if count > 1)
    if duplicates:
        raise ExportError(
            f"labels file {path} names these classes more than once: {', '.join(duplicates)}; "
            "each class must appear on exactly one line"
        )
    return labels


def dataset_classes(dataset_dir: Path) -> list[str]:
    """Class names of an image dataset as torchvision's ImageFolder finds them (imaging.class_folders)."""
    try:
        return class_folders(Path(dataset_dir))
    except PodiumError as exc:
        raise ExportError(f"{exc.message}; pass --labels-from DIR") from None
