"""LCE's host interpreter: runs a ``.tflite`` flatbuffer on any number of
inputs, batched where the graph allows, (de)quantizing int8 input/output."""

import numpy as np

from ir2net_tf.export.errors import DeployError

# Interpreter options of LCE's host interpreter. On x86 the default bconv
# kernel and the indirect BGEMM kernel differ several-fold in speed; the
# reference kernel is the readable, unoptimized one.
KERNELS = {
    "default": {},
    "indirect_bgemm": {"use_indirect_bgemm": True},
    "reference": {"use_reference_bconv": True},
}

# An input whose outputs all agree to this fraction of the largest output
# computed identically up to float rounding (no sign flipped on its way).
CLOSE_TOLERANCE = 1e-3


def load_interpreter(flatbuffer: bytes, num_threads: int = 1, kernel: str = "indirect_bgemm"):
    """LCE's interpreter of ``flatbuffer`` with one of ``KERNELS``."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter(flatbuffer, num_threads=num_threads, **KERNELS[kernel])


def _to_int8(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def with_batch_size(flatbuffer: bytes, batch_size: int) -> bytes:
    """A copy of the flatbuffer whose inputs take ``batch_size`` images.

    LCE's Python interpreter cannot resize inputs, and the converter fixes
    the batch at 1. Only the inputs' first dimension is rewritten here (in
    place, in a copy of the bytes); TFLite recomputes every other tensor's
    shape when it allocates them.
    """
    import struct

    from larq_compute_engine.mlir.python import tflite_schema as schema

    buffer = bytearray(flatbuffer)
    model = schema.Model.GetRootAs(buffer, 0)
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for i in range(subgraph.InputsLength()):
            tensor = subgraph.Tensors(subgraph.Inputs(i))
            shape = tensor._tab.Offset(4)  # Tensor.shape, the table's first field
            if not shape or tensor.ShapeLength() < 1:
                raise DeployError("The flatbuffer's input has no shape to batch.")
            struct.pack_into("<i", buffer, tensor._tab.Vector(shape), batch_size)
    return bytes(buffer)


class FlatbufferRunner:
    """Runs a flatbuffer in LCE's interpreter on any number of inputs, in
    batches, (de)quantizing int8 input/output.

    Args:
        flatbuffer: the ``.tflite`` bytes.
        batch_size: images per interpreter call. Falls back to 1 when the
            graph cannot be batched (an op that fixes the batch): checked on
            the first call against a batch-1 run of the first image.
        num_threads: interpreter threads.
        kernel: one of ``KERNELS``.
    """

    def __init__(self, flatbuffer: bytes, *, batch_size: int = 1, num_threads: int = 1,
                 kernel: str = "indirect_bgemm"):
        self.single = load_interpreter(flatbuffer, num_threads=num_threads, kernel=kernel)
        self.batched, self.batch_size = self.single, 1
        if batch_size > 1:
            try:
                self.batched = load_interpreter(with_batch_size(flatbuffer, batch_size), num_threads=num_threads,
                                            kernel=kernel)
                self.batch_size = batch_size
            except (RuntimeError, ValueError, DeployError):
                pass  # stays at batch 1
        self._checked = self.batch_size == 1

    def _call(self, interpreter, x: np.ndarray) -> np.ndarray:
        if interpreter.input_types[0] == np.int8:
            x = _to_int8(x, interpreter.input_scales[0], interpreter.input_zero_points[0])
        y = interpreter.interpreter.predict([x])[0]
        if interpreter.output_types[0] == np.int8:
            y = (y.astype(np.float32) - interpreter.output_zero_points[0]) * interpreter.output_scales[0]
        return y

    def _batch(self, x: np.ndarray) -> np.ndarray:
        count = len(x)
        if count < self.batch_size:  # the last, short batch: pad, then drop the padding
            x = np.concatenate([x, np.zeros((self.batch_size - count, *x.shape[1:]), x.dtype)])
        return self._call(self.batched, x)[:count]

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """Float outputs for ``inputs`` (N, H, W, C)."""
        x = np.asarray(inputs, np.float32)
        if self.batch_size == 1:
            return np.concatenate([self._call(self.single, x[i : i + 1]) for i in range(len(x))])
        first = self._batch(x[: self.batch_size])
        if not self._checked:
            alone = self._call(self.single, x[:1])
            tolerance = CLOSE_TOLERANCE * max(1.0, float(np.abs(alone).max()))
            self._checked = True
            if first.shape[1:] != alone.shape[1:] or np.abs(first[:1] - alone).max() > tolerance:
                self.batched, self.batch_size = self.single, 1  # batching changed the result: do not batch
                return self(x)
        rest = [self._batch(x[i : i + self.batch_size]) for i in range(self.batch_size, len(x), self.batch_size)]
        return np.concatenate([first, *rest])


def run_flatbuffer(flatbuffer: bytes, inputs: np.ndarray, *, kernel: str = "indirect_bgemm", batch_size: int = 1,
                   num_threads: int = 1) -> np.ndarray:
    """Float outputs of the flatbuffer, (de)quantizing int8 input/output."""
    return FlatbufferRunner(flatbuffer, batch_size=batch_size, num_threads=num_threads, kernel=kernel)(inputs)
