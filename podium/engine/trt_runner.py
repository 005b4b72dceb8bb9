"""Run a serialised TensorRT engine on the GPU, to check it before it is installed.

Device memory and the stream come from cuda-python (see export.cuda_runtime), as in
TensorRT's own Python samples; imported lazily by the engine build, never without a GPU.
"""

from __future__ import annotations

import numpy as np

from podium.core.modelmeta import INPUT_NAME
from podium.engine.cuda_runtime import check, cudart
from podium.engine.errors import EngineBuildError
from podium.engine.onnx2trt import import_tensorrt


class TensorRTRunner:
    """A fidelity.OutputsRunner over one engine: uint8 [N, H, W, 3] -> every output by name."""

    def __init__(self, plan: bytes) -> None:
        trt = import_tensorrt()
        self._cuda = cudart()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise EngineBuildError("TensorRT could not load the engine it built; was it built for another GPU?")
        self._context = self._engine.create_execution_context()
        self._stream = check(self._cuda.cudaStreamCreate(), "stream creation")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        # execute_async_v3 needs an address for every output, asked for or not.
        self._outputs = {
            name: trt.nptype(self._engine.get_tensor_dtype(name))
            for name in names
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT
        }

    def __call__(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        cuda = self._cuda
        images = np.ascontiguousarray(pixels, dtype=np.uint8)
        self._context.set_input_shape(INPUT_NAME, images.shape)
        results = {
            name: np.empty(tuple(self._context.get_tensor_shape(name)), dtype=dtype)
            for name, dtype in self._outputs.items()
        }
        allocated = []
        try:
            to_device, to_host = cuda.cudaMemcpyKind.cudaMemcpyHostToDevice, cuda.cudaMemcpyKind.cudaMemcpyDeviceToHost
            device_in = check(cuda.cudaMalloc(images.nbytes), "allocation")
            allocated.append(device_in)
            check(cuda.cudaMemcpy(device_in, images.ctypes.data, images.nbytes, to_device), "copy to the GPU")
            self._context.set_tensor_address(INPUT_NAME, int(device_in))
            device_out = {}
            for name, array in results.items():
                device_out[name] = check(cuda.cudaMalloc(array.nbytes), "allocation")
                allocated.append(device_out[name])
                self._context.set_tensor_address(name, int(device_out[name]))
            if not self._context.execute_async_v3(int(self._stream)):
                raise EngineBuildError("TensorRT failed to run the engine on the check images")
            check(cuda.cudaStreamSynchronize(self._stream), "synchronisation")
            for name, array in results.items():
                check(cuda.cudaMemcpy(array.ctypes.data, device_out[name], array.nbytes, to_host), "copy back")
        finally:
            for pointer in allocated:
                cuda.cudaFree(pointer)
        return results
