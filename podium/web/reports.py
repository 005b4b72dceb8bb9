"""`podium evaluate` reports in a folder (PODIUM_WEB_REPORTS_DIR): each a sub-folder with
report.json, confusion_matrix.png and report.html, as `podium evaluate --report` writes them."""

from __future__ import annotations

import json
from pathlib import Path

from podium.core.errors import FailedPrecondition, NotFound

REPORT_FILE = "report.json"
FILES = {"confusion_matrix.png": "image/png", "report.html": "text/html"}
GALLERY = 60


def listed(folder: Path | None) -> list[dict]:
    """Every report under ``folder``, newest first: name, accuracy, images, model."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"*/{REPORT_FILE}"):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found.append(
            {
                "name": path.parent.name,
                "accuracy": report.get("accuracy", 0.0),
                "n_images": report.get("n_images", 0),
                "model": report.get("model", {}),
                "mtime": path.stat().st_mtime,
            }
        )
    return sorted(found, key=lambda item: -item["mtime"])


def folder_of(folder: Path | None, name: str) -> Path:
    if folder is None:
        raise FailedPrecondition(
            "no reports folder is set",
            hint="start `podium web --reports DIR` with the folder of `podium evaluate --report` outputs",
        )
    if "/" in name or "\\" in name or name.startswith("."):
        raise NotFound(f"no report {name!r}")
    path = folder / name
    if not (path / REPORT_FILE).is_file():
        raise NotFound(f"no report {name!r} in {folder}")
    return path


def read(folder: Path | None, name: str) -> dict:
    try:
        return json.loads((folder_of(folder, name) / REPORT_FILE).read_text())
    except ValueError:
        raise FailedPrecondition(f"report {name!r} is not valid JSON", hint="run `podium evaluate` again") from None


def summary(report: dict) -> dict:
    """What the page draws besides the report's own keys."""
    per_class = sorted(report.get("per_class", {}).items(), key=lambda item: (item[1]["f1"], item[0]))
    return {"per_class": per_class, "misclassified": report.get("misclassified", [])[:GALLERY]}
