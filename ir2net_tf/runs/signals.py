"""SIGTERM and Ctrl-C during training: stop at the next step boundary with a
checkpoint, instead of dying mid-step.

SLURM, Kubernetes and cloud schedulers send SIGTERM some seconds before they
take a machine. ``tf.distribute.experimental.PreemptionCheckpointHandler``
does this for custom training loops; it does not fit ``Run``'s Keras ``fit``
loop well: it probes the GCE metadata server over HTTP at start-up (a 5 s
wait offline, and it does nothing on GCE CPU machines), restores the latest
checkpoint itself (we fall back to the newest *intact* one) and adds its own
counter to the checkpoint. The same idea here: a handler sets a flag, and
at every step boundary the workers all-reduce it (``distribute.any_worker``)
so that all of them save the same step and stop together.
"""

import signal
from typing import Optional


class Stopped(Exception):
    """The run stopped on a signal after saving a checkpoint."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum  # what a shell reports for a process ended by the signal


class StopSignals:
    """Within ``with``: the first SIGTERM or SIGINT (Ctrl-C) is only recorded
    (``received``); a second SIGINT interrupts at once (KeyboardInterrupt)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: Optional[int] = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = self.received or signum

    def __enter__(self):
        for signum in self.SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave the defaults
                pass
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            # None: a handler installed outside Python (TensorFlow's own).
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
        return False

    @staticmethod
    def name(signum: int) -> str:
        return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
