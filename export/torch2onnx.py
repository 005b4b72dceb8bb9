"""PyTorch module -> ONNX file with the serving input/output names and a dynamic batch axis."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from export.errors import ExportError
from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME

DEFAULT_OPSET = 17
BATCH_AXIS_NAME = "batch"
DEFAULT_INPUT_SIZE = 224


def torch2onnx(
    module: nn.Module,
    path: Path,
    opset: int = DEFAULT_OPSET,
    input_size: int = DEFAULT_INPUT_SIZE,
    output_names: tuple[str, ...] = (OUTPUT_NAME,),
) -> onnx.ModelProto:
    """Export ``module`` (uint8 ``[B, S, S, 3]`` in) to ``path`` in eval mode; check and return it.

    ``output_names`` names the module's outputs in order (a module returning a tuple has several).

    Uses the TorchScript exporter (``dynamo=False``): torch 2.14 defaults to the dynamo
    exporter, which needs the onnxscript package, and for this plain CNN the TorchScript
    exporter gives a clean graph (Conv/Gemm/Softmax, constants folded) whose batch axis
    is symbolic.
    """
    module.eval()
    example = torch.zeros(1, input_size, input_size, 3, dtype=torch.uint8)
    dynamic_axes = {name: {0: BATCH_AXIS_NAME} for name in (INPUT_NAME, *output_names)}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The exporter announces its own deprecation on every call; the choice is made above.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except (RuntimeError, onnx.checker.ValidationError, torch.onnx.errors.OnnxExporterError) as exc:
        raise ExportError(f"ONNX export failed: {exc}") from exc
    return model
