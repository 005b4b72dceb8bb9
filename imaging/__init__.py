"""Image decoding and the serving-time transform shared by export, worker and gateway."""

from imaging.decode import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_rgb
from imaging.folders import ImageSet, class_folders, decoded_images, folder_image_set, image_files
from imaging.serving import DecodeBudget, DecodeMode, Decoder, model_input
from imaging.transform import PreprocessSpec, center_crop, preprocess, resize_shorter

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
    "decode_rgb",
    "decoded_images",
    "folder_image_set",
    "image_files",
    "model_input",
    "preprocess",
    "resize_shorter",
]
