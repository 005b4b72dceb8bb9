"""The files of an evaluation: OUT/report.json, OUT/confusion_matrix.png, OUT/report.html."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from podium.core.imaging import ImageDecodeError, decode_rgb

REPORT_JSON = "report.json"
CONFUSION_PNG = "confusion_matrix.png"
REPORT_HTML = "report.html"
THUMBNAIL_PX = 160
MAX_GALLERY = 300
INCHES_PER_CLASS = 0.2


def write_report_files(out: Path, report: dict, images: Path | None) -> list[Path]:
    """All three files; the gallery shows thumbnails when the images are on this machine."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / REPORT_JSON
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    png_path = write_confusion_matrix(out / CONFUSION_PNG, report)
    html_path = out / REPORT_HTML
    html_path.write_text(render_html(report, images), encoding="utf-8")
    return [json_path, png_path, html_path]


def write_confusion_matrix(path: Path, report: dict) -> Path:
    """Row-normalised (each true class sums to 1), classes in the model's (sorted) order,
    every class labelled, a colour bar; the figure grows with the number of classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report["labels"]
    matrix = np.array(report["confusion_matrix"], dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    # A fifth of an inch a class: 100 classes give a 23-inch figure with 6.5 pt labels.
    size = max(6.0, INCHES_PER_CLASS * len(labels) + 3)
    font = min(10.0, INCHES_PER_CLASS * 72 * 0.45)
    figure, axes = plt.subplots(figsize=(size + 1.5, size), constrained_layout=True)
    shown = axes.imshow(normalised, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=font)
    axes.set_yticks(range(len(labels)), labels, fontsize=font)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    model = report.get("model", {})
    axes.set_title(
        f"{model.get('name', '?')} v{model.get('version', '?')}: accuracy {report['accuracy']:.1%} "
        f"on {report['n_images']} images (rows normalised)"
    )
    figure.colorbar(shown, ax=axes, fraction=0.04, label="share of the true class")
    figure.savefig(path, dpi=150)
    plt.close(figure)
    return path


def render_html(report: dict, images: Path | None) -> str:
    environment = Environment(loader=PackageLoader("podium.evaluate", "templates"), autoescape=select_autoescape())
    gallery = [dict(item, thumbnail=_thumbnail(images, item["path"])) for item in report["misclassified"][:MAX_GALLERY]]
    per_class = sorted(report["per_class"].items(), key=lambda item: (item[1]["f1"], item[0]))
    return environment.get_template("report.html.j2").render(report=report, gallery=gallery, per_class=per_class)


def _thumbnail(images: Path | None, rel: str) -> str:
    """A small JPEG of the image as a data: URL, or "" when the image is not here."""
    if images is None:
        return ""
    try:
        image = decode_rgb((images / rel).read_bytes())
    except (OSError, ImageDecodeError):
        return ""
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
