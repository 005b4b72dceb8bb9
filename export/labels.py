"""Class labels: one class name per non-empty line of a text file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from export.errors import ExportError

# The 100 classes of the "100 Sports Image Classification" data set, in ImageFolder order.
DEFAULT_LABELS = Path(__file__).with_name("sports100_classes.txt")


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
