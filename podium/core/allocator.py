"""glibc malloc settings for the processes that allocate megabytes per request.

A worker allocates and frees each image's pixels (150 KB at 224x224) and each request's
stack of them (2.4 MB for 16) many times a second, and Triton's Python-backend stub a
batch's input and outputs; with glibc's defaults such blocks keep going back to the
kernel (unmapped, or trimmed off the heap's top) and coming back as fresh pages, each
faulted in and zeroed again: ~8 page faults per image in a worker, ~10 in the stub.
Keeping blocks up to 16 MB in the heap, and trimming it only past 64 MB free, stops that
for ~20 MiB more resident memory per process (docs/performance.md, section 00h).
Photos larger than 16 MB decoded still get their own mapping, returned when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MMAP_THRESHOLD_BYTES = 16 << 20  # a request of 64 images at 224x224: 9.6 MB
TRIM_THRESHOLD_BYTES = 64 << 20
# For processes started by others (Triton and its stub): glibc reads these at start.
MALLOC_ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES),
}
# mallopt(3) parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def malloc_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """MALLOC_ENVIRONMENT less what ``environ`` (the operator's) already sets."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in MALLOC_ENVIRONMENT.items() if name not in environ}


def tune_malloc() -> bool:
    """Apply the settings to this running process; False where the C library is not glibc
    or the operator set them already (their MALLOC_* variables win)."""
    if not malloc_environment():
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt, their own allocator
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
