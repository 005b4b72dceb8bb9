"""The stand-in model: the served model's signature (uint8 images in, 100 probabilities out,
the same config, metadata and Python-backend model.py) with an ONNX graph that answers in
microseconds, so that what the bench's stand-in phases measure is Podium itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from export.served import ServedModel
from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME
from podium.stores.modelrepo.layout import ONNX_FILENAME


def standin_repository(source: ServedModel, target: Path) -> ServedModel:
    """A copy of the served model whose ONNX graph answers in microseconds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source.repository / source.model_name, target / source.model_name)
    onnx_path = target / source.model_name / source.onnx_path.relative_to(source.repository / source.model_name)
    classes = int(
        onnx.load(source.onnx_path, load_external_data=False).graph.output[0].type.tensor_type.shape.dim[1].dim_value
    )
    images = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", 224, 224, 3])
    probabilities = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", classes])
    weights = numpy_helper.from_array(np.linspace(-0.05, 0.05, classes, dtype=np.float32).reshape(1, classes), "w")
    axis = numpy_helper.from_array(np.array([1], dtype=np.int64), "axis")
    # Every 8th pixel of every 8th row (784 of 50,176): the answer still depends on each image,
    # but costs ~5 µs instead of the ~67 µs a mean over all pixels took, which a model in
    # microseconds should not spend on the cores the pipeline is measured on.
    grid = [
        numpy_helper.from_array(np.array(values, dtype=np.int64), name)
        for name, values in (("starts", [0, 0]), ("ends", [224, 224]), ("axes", [1, 2]), ("steps", [8, 8]))
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Slice", [INPUT_NAME, "starts", "ends", "axes", "steps"], ["grid"]),
            helper.make_node("Cast", ["grid"], ["x"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Unsqueeze", ["mean", "axis"], ["column"]),
            helper.make_node("Mul", ["column", "w"], ["scores"]),
            helper.make_node("Softmax", ["scores"], [OUTPUT_NAME], axis=1),
        ],
        "standin",
        [images],
        [probabilities],
        initializer=[weights, axis, *grid],
    )
    # IR 8 with opset 17: what the exporter writes, and what any onnxruntime of the image loads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    (onnx_path.parent / ONNX_FILENAME).write_bytes(model.SerializeToString())
    return ServedModel(target, source.model_name, onnx_path, source.intra_op_threads, source.max_queue_delay_us)
