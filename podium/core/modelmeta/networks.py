"""The torchvision classifiers an export may hold, by family (names only: no torch here).

``export.architectures`` knows how each family is laid out and builds them; this list is
what the command line offers and the metadata's ``architecture`` names.
"""

from __future__ import annotations

NETWORK_FAMILIES: dict[str, tuple[str, ...]] = {
    "resnet": (
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
    ),
    "efficientnet": (
        *(f"efficientnet_b{n}" for n in range(8)),
        "efficientnet_v2_s",
        "efficientnet_v2_m",
        "efficientnet_v2_l",
    ),
    "mobilenet_v2": ("mobilenet_v2",),
    "mobilenet_v3": ("mobilenet_v3_small", "mobilenet_v3_large"),
    "vgg": tuple(f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")),
    "convnext": ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large"),
    "regnet": tuple(
        f"regnet_{kind}_{size}"
        for kind in ("x", "y")
        for size in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")
    ),
    "densenet": ("densenet121", "densenet161", "densenet169", "densenet201"),
}
ARCHITECTURE_NAMES: tuple[str, ...] = tuple(name for names in NETWORK_FAMILIES.values() for name in names)
DEFAULT_ARCHITECTURE = "resnet50"
