"""IR²Net binary neural networks for TensorFlow/Keras, built on Larq.

Importing this package selects Keras 2 (``tf_keras``) for TensorFlow, which
Larq needs; import it before TensorFlow, or set ``TF_USE_LEGACY_KERAS=1``.
"""

import importlib

import sys

from ir2net_tf._keras2 import ensure_legacy_keras, register_layers
from ir2net_tf._moved import MovedModules

ensure_legacy_keras()
# The modules that moved into the layer folders keep their former import paths.
if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, MovedModules())
if "tensorflow" in sys.modules:  # already paid for: register the layers now (else at its import)
    register_layers()

__version__ = "0.2.0"

__all__ = ["layers", "recovery", "restriction", "restriction_mask", "restrict"]

# Loaded on first use (PEP 562), not on import: the package imports no
# TensorFlow itself, so a command that needs none (``python -m zoo list``
# reads its table) starts at once. The first ``import tensorflow`` imports
# them (_keras2.register_layers): saved models load without custom_objects.
_SUBMODULES = ("layers", "recovery", "restriction")
_FROM_RESTRICTION = ("restriction_mask", "restrict")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"ir2net_tf.{name}")
    if name in _FROM_RESTRICTION:
        return getattr(importlib.import_module("ir2net_tf.nn.restriction"), name)
    raise AttributeError(f"module 'ir2net_tf' has no attribute {name!r}")
