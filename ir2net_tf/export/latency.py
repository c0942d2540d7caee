"""Host latency of a ``.tflite`` flatbuffer in LCE's interpreter."""

import statistics
import time
from typing import Dict, List, Sequence

import numpy as np

from ir2net_tf.export.interpreter import load_interpreter


def measure_latency(
    flatbuffer: bytes,
    *,
    kernels: Sequence[str] = ("default", "indirect_bgemm"),
    threads: Sequence[int] = (1, 2),
    runs: int = 20,
    warmup: int = 3,
) -> List[Dict]:
    """Median host latency (ms) of one batch-1 inference per kernel and thread count."""
    results = []
    for kernel in kernels:
        for num_threads in threads:
            interpreter = load_interpreter(flatbuffer, num_threads=num_threads, kernel=kernel)
            shape = interpreter.input_shapes[0]
            x = np.zeros(shape, dtype=interpreter.input_types[0])
            # Call the wrapped interpreter directly: InterpreterBase.predict
            # adds batching and concatenation we do not want to time.
            for _ in range(warmup):
                interpreter.interpreter.predict([x])
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                interpreter.interpreter.predict([x])
                times.append((time.perf_counter() - start) * 1000.0)
            results.append(
                {
                    "kernel": kernel,
                    "threads": num_threads,
                    "median_ms": statistics.median(times),
                    "min_ms": min(times),
                    "runs": runs,
                }
            )
    return results
