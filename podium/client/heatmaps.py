"""``--heatmaps DIR``: one overlay PNG per explained ok result, in the folder's own structure.

The image is read again from where the job's files came from (the uploaded folder, or a
folder given with ``--images``); ``a/b/photo.jpg`` becomes ``DIR/a/b/photo.png``. When two
files differ only in their extension (``x.jpg`` and ``x.png``), the second keeps its whole
name (``x.png.png``), so that no overlay overwrites another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from podium.core.errors import InvalidArgument
from podium.core.imaging import DEFAULT_MAX_PIXELS, ImageDecodeError, PreprocessSpec, decode_rgb
from podium.core.imaging.heatmap import overlay

OVERLAY_SUFFIX = ".png"
SHEET_GAP = 6


@dataclass
class HeatmapWriter:
    """Writes overlays under ``out_dir``; ``images`` is where records' paths are read from."""

    out_dir: Path
    resize: int
    crop: int
    images: Path | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    written: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ok results whose image could not be read here
    _taken: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.images is not None and not Path(self.images).is_dir():
            raise InvalidArgument(
                f"{self.images} is not a folder: heat maps are drawn over the job's images",
                hint="pass --images DIR, the folder the job's files came from",
            )
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.spec = PreprocessSpec(resize=self.resize, crop=self.crop)

    def add(self, record: dict) -> Path | None:
        """The overlay of one result record (the JSONL contract's dict), its image read from
        ``images`` / its path; None when it has no map or its image cannot be read."""
        relative = Path(record["path"])
        if self.images is None or relative.is_absolute() or ".." in relative.parts:
            # Never read or write outside the two folders, whatever a path says.
            return self._missing(record)
        return self.draw(record, Path(self.images) / relative, relative)

    def draw(self, record: dict, source: Path, relative: Path) -> Path | None:
        """The overlay of ``record`` over the image at ``source``, written as ``relative``.png."""
        cam = record.get("cam")
        if record["status"] != "ok" or not cam:
            return None
        try:
            image = decode_rgb(source.read_bytes(), self.max_pixels)
        except (OSError, ImageDecodeError):
            return self._missing(record)
        top = next((p for p in record["top_k"] if p["index"] == cam["class_index"]), record["top_k"][0])
        caption = f"{top['label']}  {top['probability']:.1%}"
        target = self._target(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        overlay(image, self.spec, tuple(cam["grid"]), cam["values"], caption).save(target)
        self.written.append(target)
        return target

    def _missing(self, record: dict) -> None:
        if record["status"] == "ok" and record.get("cam"):
            self.missing.append(record["path"])

    def _target(self, relative: Path) -> Path:
        target = self.out_dir / relative.with_suffix(OVERLAY_SUFFIX)
        if target in self._taken:
            target = self.out_dir / relative.with_name(relative.name + OVERLAY_SUFFIX)
        self._taken.add(target)
        return target


def contact_sheet(overlays: Sequence[Path], columns: int = 3) -> Image.Image:
    """Several overlays side by side, ``columns`` to a row: one picture for a page."""
    if not overlays:
        raise InvalidArgument("no heat maps to put on a sheet")
    pictures = [Image.open(path).convert("RGB") for path in overlays]
    width, height = pictures[0].size
    rows = -(-len(pictures) // columns)
    used = min(columns, len(pictures))
    sheet = Image.new("RGB", (used * width + (used - 1) * SHEET_GAP, rows * height + (rows - 1) * SHEET_GAP), "white")
    for position, picture in enumerate(pictures):
        row, column = divmod(position, columns)
        sheet.paste(picture.resize((width, height)), (column * (width + SHEET_GAP), row * (height + SHEET_GAP)))
    return sheet
