"""Export to the Larq Compute Engine: ``export_model`` (a Keras model or a
finished run to a verified ``.tflite`` and its report, ``export.api``), the
command ``python -m export`` / ``ir2net-export`` (``export.cli``), and one
module per step: ``convert``, ``census``, ``interpreter``, ``parity``,
``latency``, ``writing``, ``inputs``, ``report``.

    from ir2net_tf.export import export_model, ExportReport

Importing the package imports no TensorFlow; ``export_model`` and
``ExportReport`` load it on first use (PEP 562).
"""

import importlib

from ir2net_tf.export.errors import DeployError, ExportError

__all__ = ["export_model", "ExportReport", "ExportError", "DeployError"]

_FROM_API = ("export_model", "ExportReport")


def __getattr__(name):
    if name in _FROM_API:
        return getattr(importlib.import_module("ir2net_tf.export.api"), name)
    raise AttributeError(f"module 'ir2net_tf.export' has no attribute {name!r}")
