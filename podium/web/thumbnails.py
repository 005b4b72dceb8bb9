"""Thumbnails of uploaded images: the centre crop the model saw, small, as JPEG on disk.

The page makes them while an upload passes through it (it never keeps the images), so a
thumbnail exists for the jobs uploaded through this page; a class activation map covers
exactly the same square, so it can be drawn over the thumbnail as it is.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import time
from pathlib import Path

from PIL import Image

from podium.core.errors import PodiumError
from podium.core.imaging import PreprocessSpec, center_crop, resize_shorter
from podium.core.imaging.decode import finish_decoding, open_image, to_rgb
from podium.core.imaging.serving import draft_jpeg

log = logging.getLogger(__name__)

# The default model's view: the shorter side resized to 256, the centre 224 kept (another
# model's, e.g. EfficientNet-B3's 320 and 300, comes from the gateway with the upload).
MODEL_VIEW = PreprocessSpec()
JPEG_QUALITY = 82
# An upload's staging folder outlives it only if the page died mid-upload.
STAGING_PREFIX = "upload-"
STAGING_MAX_AGE_S = 24 * 3600
# Larger files get no thumbnail (the upload still passes them on, never gathering them whole):
# a camera JPEG is 5-15 MB; the page's memory per upload stays within a few times this.
MAX_SOURCE_BYTES = 16 * 1024**2


def thumbnail_jpeg(data: bytes, side_px: int, view: PreprocessSpec = MODEL_VIEW) -> bytes:
    """The model's centre crop of ``data`` as a ``side_px``-square JPEG; PodiumError if unreadable."""
    image = open_image(data)
    resize = round(side_px * view.resize / view.crop)
    draft_jpeg(image, resize)  # a camera JPEG decodes at 1/2..1/8 scale: fast and small
    picture = center_crop(resize_shorter(to_rgb(finish_decoding(image)), resize), side_px)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def path_key(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:32]


class ThumbnailStore:
    """``ROOT/JOB/KEY.jpg``; an upload writes under a staging name until its job id is known."""

    def __init__(self, root: Path, side_px: int) -> None:
        self.root = root
        self.side_px = side_px

    def file(self, owner: str, path: str) -> Path:
        return self.root / owner / f"{path_key(path)}.jpg"

    def add(self, owner: str, path: str, data: bytes, view: PreprocessSpec = MODEL_VIEW) -> bool:
        """Make and keep ``path``'s thumbnail of the square ``view`` shows; False (and nothing
        kept) if it cannot be read."""
        if len(data) > MAX_SOURCE_BYTES:
            return False
        try:
            jpeg = thumbnail_jpeg(data, self.side_px, view)
        except (PodiumError, OSError, ValueError, Image.DecompressionBombError):
            return False  # its result line carries the reason; the page shows no picture
        target = self.file(owner, path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            partial.write_bytes(jpeg)
            os.replace(partial, target)
        except OSError as exc:  # a full or read-only cache costs the pictures, never the upload
            log.warning("no thumbnail for %s: %s", path, exc)
            return False
        return True

    def rename(self, staging: str, job_id: str) -> None:
        source = self.root / staging
        if source.is_dir():
            target = self.root / job_id
            if target.exists():  # a resumed job: keep both halves
                for item in source.iterdir():
                    os.replace(item, target / item.name)
                shutil.rmtree(source, ignore_errors=True)
            else:
                os.replace(source, target)

    def discard(self, owner: str) -> None:
        shutil.rmtree(self.root / owner, ignore_errors=True)

    def sweep(self, max_age_s: float, now: float | None = None) -> int:
        """Remove the thumbnails of jobs uploaded more than ``max_age_s`` ago (their job has
        expired, or was deleted elsewhere: the CLI, another page) and staging folders a dead
        upload left; how many folders went."""
        now = time.time() if now is None else now
        removed = 0
        try:
            folders = [entry for entry in os.scandir(self.root) if entry.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return 0
        for folder in folders:
            limit = STAGING_MAX_AGE_S if folder.name.startswith(STAGING_PREFIX) else max_age_s
            if now - _newest(Path(folder.path)) > limit:
                shutil.rmtree(folder.path, ignore_errors=True)
                removed += 1
        return removed


def _newest(folder: Path) -> float:
    """The newest modification time in ``folder`` (the folder's own when it is empty)."""
    try:
        return max([folder.stat().st_mtime, *(entry.stat().st_mtime for entry in os.scandir(folder))])
    except FileNotFoundError:
        return 0.0
