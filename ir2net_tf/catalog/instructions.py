"""Executed instructions per inference of a ``.tflite`` in LCE's interpreter,
counted with valgrind: a latency proxy that repeats to about 0.05 % where
host timings on a shared machine move by 5–15 %.

Method: a child Python process loads the flatbuffer into LCE's host
interpreter and runs it N times under ``valgrind --tool=cachegrind
--cache-sim=no`` (which counts every executed instruction and simulates no
cache). Two runs, of 1 and 3 inferences, differ only by two inferences:
Python's start-up, the imports, loading the model and the first call's
one-off set-up cancel, and half the difference is one inference.

The count is of x86 instructions on the host that runs it: a proxy for
relative cost, not ARM time (other instruction set, other kernels). It
needs the ``valgrind`` program (Debian/Ubuntu: ``apt-get install
valgrind``); ``available()`` says whether it is installed, and callers leave
the count out when it is not.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Optional

# The kernel options of ``export.interpreter.KERNELS`` the count runs with: the indirect
# BGEMM kernel, the fastest on x86 (several-fold faster than the default).
KERNEL_OPTIONS = {"use_indirect_bgemm": True}

# The child imports only numpy and LCE's interpreter: importing TensorFlow
# (through ir2net_tf or larq_compute_engine's own __init__) under valgrind
# takes minutes per run, for nothing the difference of two runs keeps.
_CHILD = """
import importlib.util, json, sys, types
import numpy as np

# larq_compute_engine's __init__ loads its converter and with it
# TensorFlow: an empty package module in its place keeps that out.
package = types.ModuleType("larq_compute_engine")
package.__path__ = importlib.util.find_spec("larq_compute_engine").submodule_search_locations
sys.modules["larq_compute_engine"] = package
from larq_compute_engine.tflite.python.interpreter import Interpreter

path, inferences, options = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
with open(path, "rb") as f:
    interpreter = Interpreter(f.read(), num_threads=1, **options)
shape, dtype = interpreter.input_shapes[0], interpreter.input_types[0]
# The same input every run: standard-normal images (zeros where the input is
# int8), as the parity checks use.
rng = np.random.default_rng(0)
x = rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating) else np.zeros(shape, dtype)
for _ in range(inferences):
    interpreter.interpreter.predict([x])
"""


# A fixed hash seed: with Python's random one, start-up differs by about
# ±0.5 M instructions from run to run (with it, by about 2 k), which would
# not cancel between the two runs.
_CHILD_ENV = {**os.environ, "PYTHONHASHSEED": "0"}


class InstructionCountError(Exception):
    """Counting failed; the message says why."""


def available() -> bool:
    """Whether the ``valgrind`` program is on the PATH."""
    return shutil.which("valgrind") is not None


def _count(path: str, inferences: int, timeout: float) -> int:
    """Executed instructions of the whole child process (start-up included)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "cachegrind.out")
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
                   sys.executable, "-c", _CHILD, path, str(inferences), json.dumps(KERNEL_OPTIONS)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_CHILD_ENV)
        except subprocess.TimeoutExpired:
            raise InstructionCountError(f"valgrind ran {path} for more than {timeout:.0f} s; not counted.")
        if done.returncode != 0 or not os.path.exists(out):
            detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InstructionCountError(f"valgrind could not run {path} in LCE's interpreter: {detail}")
        return parse_cachegrind(out)


def parse_cachegrind(path: str) -> int:
    """The total instruction count (the ``Ir`` event of the ``summary:``
    line) of a cachegrind output file."""
    events, summary = None, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                summary = [int(v) for v in line.split()[1:]]
    if events is None or summary is None or "Ir" not in events or len(summary) != len(events):
        raise InstructionCountError(f"{path} is not a cachegrind output with an Ir summary.")
    return summary[events.index("Ir")]


def per_inference(path: str, *, timeout: float = 600.0) -> int:
    """Executed instructions of one inference of the ``.tflite`` file at
    ``path`` (1 thread, batch 1): (count of 3 inferences − count of 1) / 2.

    Raises:
        InstructionCountError: valgrind is missing or the child failed.
    """
    if not available():
        raise InstructionCountError("valgrind is not installed (Debian/Ubuntu: apt-get install valgrind).")
    one, three = (_count(path, n, timeout) for n in (1, 3))
    return (three - one) // 2


def per_inference_or_none(flatbuffer: bytes, *, timeout: float = 600.0) -> Optional[int]:
    """``per_inference`` of the flatbuffer's bytes, or None where valgrind is
    not installed."""
    if not available():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        return per_inference(path, timeout=timeout)
