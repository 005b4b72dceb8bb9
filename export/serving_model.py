"""The graph that is served: uint8 NHWC pixels in, class probabilities out.

Normalisation lives in the graph so that clients send 1 byte per channel, not 4.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from podium.core.modelmeta import IMAGENET_MEAN, IMAGENET_STD

PIXEL_MAX = 255.0


class ServingModel(nn.Module):
    """Wrap a classifier: ``[B, H, W, 3]`` uint8 -> ``[B, N]`` float32 softmax probabilities."""

    def __init__(
        self,
        classifier: nn.Module,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        channels: int = 3,
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.channels = channels  # 1: a grey network reads the first of the three (equal) channels
        self.register_buffer("mean", torch.tensor(mean[:channels], dtype=torch.float32).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(std[:channels], dtype=torch.float32).view(1, channels, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.normalised(images)), dim=1)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels -> float32 probabilities, as numpy (a model with maps drops them)."""
        with torch.inference_mode():
            output = self.eval()(torch.from_numpy(pixels))
        return (output[0] if isinstance(output, tuple) else output).numpy()

    def normalised(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> the classifier's normalised float NCHW input."""
        # Cast before the transpose: TensorRT takes uint8 only as a network input feeding a cast.
        pixels = images.float().permute(0, 3, 1, 2) / PIXEL_MAX
        if self.channels == 1:
            pixels = pixels[:, :1]
        return (pixels - self.mean) / self.std
