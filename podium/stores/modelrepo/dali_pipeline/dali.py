"""The gpu-dali target's preprocessing, run by Triton's DALI backend (autoserialized).

`podium export --target gpu-dali` copies this file into ``<model>_dali/1/dali.py`` with the
four constants below set from the model's metadata; Triton's DALI backend serializes the
``@autoserialize`` pipeline when it loads the model (the NGC Triton image has DALI). It is
not part of Podium's packages (nothing here imports nvidia.dali).

Encoded bytes in, the uint8 HWC centre crop out, as torchvision's eval transform makes it:
decode on the GPU (``device="mixed"``: nvJPEG / nvImageCodec, EXIF orientation applied),
resize the shorter side to RESIZE with the longer one ``floor(RESIZE * long / short)``
(torchvision's integer rule, computed per sample here rather than left to the operator's
rounding), antialiased linear (or cubic), then the centre CROP x CROP with torchvision's offsets
(``round((extent - CROP) / 2)``, Python's round: halves to even). No normalisation: the
model graph does it. Decoders and resamplers differ from Pillow's in the last bit, so this
path is gated against the Pillow path before use (docs/export.md, "gpu-dali").
"""

RESIZE = 256
CROP = 224
INTERPOLATION = "bilinear"  # or "bicubic" (EfficientNet's transform): DALI's cubic resampler
MAX_BATCH_SIZE = 64
INPUT_NAME = "encoded"


def resized_extent(extent, other, resize=RESIZE):
    """One side after torchvision's Resize(resize): the shorter side becomes ``resize``, the
    longer ``floor(resize * long / short)``. Plain integer arithmetic, so it runs the same on
    Python ints and on DALI's integer data nodes."""
    short = _minimum(extent, other)
    return (resize * extent) // short


def crop_start(extent, crop=CROP):
    """torchvision's centre-crop offset ``int(round((extent - crop) / 2))`` in integers: an odd
    difference 2k + 1 rounds to k when k is even and to k + 1 when it is odd."""
    difference = extent - crop
    half = difference // 2
    return half + (difference & half & 1)


def _minimum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    import nvidia.dali.math as dmath

    return dmath.min(a, b)


def _pipeline():
    from nvidia import dali
    from nvidia.dali import types
    from nvidia.dali.plugin.triton import autoserialize

    @autoserialize
    @dali.pipeline_def(batch_size=MAX_BATCH_SIZE, num_threads=4, device_id=0)
    def preprocess():
        encoded = dali.fn.external_source(device="cpu", name=INPUT_NAME, dtype=types.UINT8, ndim=1)
        images = dali.fn.decoders.image(encoded, device="mixed", output_type=types.RGB)
        shape = images.shape(dtype=types.INT32)  # HWC, on the CPU
        height, width = shape[0], shape[1]
        resized = dali.fn.resize(
            images,
            resize_y=dali.fn.cast(resized_extent(height, width), dtype=types.FLOAT),
            resize_x=dali.fn.cast(resized_extent(width, height), dtype=types.FLOAT),
            interp_type=types.INTERP_CUBIC if INTERPOLATION == "bicubic" else types.INTERP_LINEAR,
            antialias=True,
            dtype=types.UINT8,
        )
        new_height, new_width = resized_extent(height, width), resized_extent(width, height)
        anchor = dali.fn.stack(crop_start(new_height), crop_start(new_width))
        # HWC uint8, the layout and type the model's input takes (outputs match by position).
        return dali.fn.slice(resized, start=anchor, shape=[CROP, CROP], axes=[0, 1], out_of_bounds_policy="error")

    return preprocess


# The DALI backend runs `python dali.py FILE autoserialize.me`: @autoserialize writes the
# serialized pipeline when it decorates it. Without DALI (a CPU machine) only the helpers remain.
try:
    _pipeline()
except ImportError:
    pass
