"""Image decoding and the serving-time transform shared by export, worker and gateway."""

from podium.core.imaging.decode import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_rgb
from podium.core.imaging.folders import ImageSet, class_folders, decoded_images, folder_image_set, image_files
from podium.core.imaging.serving import DecodeBudget, DecodeMode, Decoder, model_input
from podium.core.imaging.transform import PreprocessSpec, center_crop, preprocess, resize_shorter

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DecodeBudget",
    "DecodeMode",
    "Decoder",
    "ImageDecodeError",
    "ImageSet",
    "PreprocessSpec",
    "center_crop",
    "class_folders",
    "decode",
    "decode_rgb",
    "decoded_images",
    "folder_image_set",
    "heatmap",
    "image_files",
    "model_input",
    "preprocess",
    "resize_shorter",
    "serving",
]
