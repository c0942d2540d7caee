"""Make sure TensorFlow uses Keras 2 (``tf_keras``), which Larq requires.

TensorFlow 2.16 picks its Keras when it is first imported: Keras 3 unless
``TF_USE_LEGACY_KERAS=1`` is set by then. Every entry point of this project
imports this module before TensorFlow so that a user never has to set it.
"""

import os
import sys

_FIX = (
    "Set TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported (for "
    "example `export TF_USE_LEGACY_KERAS=1` in the shell, or "
    "`os.environ['TF_USE_LEGACY_KERAS'] = '1'` at the very top of your script), "
    "or import ir2net_tf before tensorflow."
)


def ensure_legacy_keras() -> None:
    """Select Keras 2 for TensorFlow, or fail loudly if it is too late to."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        return
    keras_module = getattr(getattr(tf, "keras", None), "__name__", "")
    if not keras_module.startswith("tf_keras"):
        raise ImportError(
            "TensorFlow was imported with Keras 3 "
            f"(tf.keras is {keras_module or 'unknown'}), but ir2net_tf and Larq "
            "need Keras 2 (tf_keras). " + _FIX
        )
