"""Run a serialised TensorRT engine on the GPU, to check it before it is installed.

Device memory and the stream come from cuda-python (see export.cuda_runtime), as in
TensorRT's own Python samples; imported lazily by the engine build, never without a GPU.
"""

from __future__ import annotations

import numpy as np

from engine.cuda_runtime import check, cudart
from engine.errors import EngineBuildError
from engine.onnx2trt import import_tensorrt
from modelmeta import INPUT_NAME, OUTPUT_NAME


class TensorRTRunner:
    """A fidelity.Runner over one engine: uint8 [N, H, W, 3] -> float32 [N, classes]."""

    def __init__(self, plan: bytes) -> None:
        trt = import_tensorrt()
        self._cuda = cudart()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise EngineBuildError("TensorRT could not load the engine it built; was it built for another GPU?")
        self._context = self._engine.create_execution_context()
        self._stream = check(self._cuda.cudaStreamCreate(), "stream creation")

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        cuda = self._cuda
        images = np.ascontiguousarray(pixels, dtype=np.uint8)
        self._context.set_input_shape(INPUT_NAME, images.shape)
        probabilities = np.empty(tuple(self._context.get_tensor_shape(OUTPUT_NAME)), dtype=np.float32)
        device_in = check(cuda.cudaMalloc(images.nbytes), "allocation")
        device_out = check(cuda.cudaMalloc(probabilities.nbytes), "allocation")
        try:
            to_device, to_host = cuda.cudaMemcpyKind.cudaMemcpyHostToDevice, cuda.cudaMemcpyKind.cudaMemcpyDeviceToHost
            check(cuda.cudaMemcpy(device_in, images.ctypes.data, images.nbytes, to_device), "copy to the GPU")
            self._context.set_tensor_address(INPUT_NAME, int(device_in))
            self._context.set_tensor_address(OUTPUT_NAME, int(device_out))
            if not self._context.execute_async_v3(int(self._stream)):
                raise EngineBuildError("TensorRT failed to run the engine on the check images")
            check(cuda.cudaStreamSynchronize(self._stream), "synchronisation")
            check(cuda.cudaMemcpy(probabilities.ctypes.data, device_out, probabilities.nbytes, to_host), "copy back")
        finally:
            cuda.cudaFree(device_in)
            cuda.cudaFree(device_out)
        return probabilities
