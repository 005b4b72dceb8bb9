"""Real photographs, built at run time from images bundled in scikit-image (no downloads)."""

from podium.samples.photos import bundled_photos, write_photo_folder

__all__ = [
    "bundled_photos",
    "labelled",
    "photos",
    "write_photo_folder",
]
