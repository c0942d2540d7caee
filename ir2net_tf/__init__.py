"""IR²Net binary neural networks for TensorFlow/Keras, built on Larq.

Importing this package selects Keras 2 (``tf_keras``) for TensorFlow, which
Larq needs; import it before TensorFlow, or set ``TF_USE_LEGACY_KERAS=1``.
"""

from ir2net_tf._keras2 import ensure_legacy_keras

ensure_legacy_keras()

from ir2net_tf import layers, recovery, restriction  # noqa: E402
from ir2net_tf.restriction import restriction_mask, restrict  # noqa: E402

__version__ = "0.2.0"

__all__ = ["layers", "recovery", "restriction", "restriction_mask", "restrict"]
