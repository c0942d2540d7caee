"""Work in a fresh process: its memory goes back to the system when it ends,
and a crash inside TensorFlow or LCE's converter (a segmentation fault, the
out-of-memory killer) ends only it, not the sweep that asked for it."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool


class ProcessDied(RuntimeError):
    """The fresh process ended without an answer (killed, or crashed)."""


def call(function, *args, **kwargs):
    """``function(*args, **kwargs)`` in a fresh (spawned, not forked: no
    TensorFlow state is inherited) process. Its exceptions come back as they
    are; a process that dies raises ``ProcessDied``. ``function`` must be
    importable by name (a module-level function)."""
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(function, *args, **kwargs).result()
    except BrokenProcessPool as error:
        raise ProcessDied(f"the process of {function.__name__}() died (killed for memory, or a crash in "
                          "TensorFlow or LCE's converter)") from error
