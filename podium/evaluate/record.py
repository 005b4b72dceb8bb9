"""An evaluation's summary, kept beside the model version it judged, for ``podium models``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from podium.stores.modelrepo.files import replace_json
from podium.stores.modelrepo.layout import EVALUATION_FILENAME


def record_in_repository(repository: Path, report: dict, folder: str) -> Path | None:
    """Write REPO/<model>/<version>/evaluation.json; None when that version is not in REPO."""
    model = report.get("model", {})
    version_dir = Path(repository) / str(model.get("name", "")) / str(model.get("version", ""))
    if not model.get("name") or not version_dir.is_dir():
        return None
    summary = {
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "folder": folder,
        "n_images": report["n_images"],
        "accuracy": report["accuracy"],
        "accuracy_ci95": report["accuracy_ci95"],
        "top5_accuracy": report["top5_accuracy"],
        "macro_f1": report["macro_avg"]["f1"],
    }
    path = version_dir / EVALUATION_FILENAME
    replace_json(path, summary)
    return path
