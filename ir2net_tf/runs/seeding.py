"""``--seed``: the same command with the same seed trains the same weights.

The data order and augmentation are already functions of (seed, epoch,
position) (``ir2net_tf.data``); what remains is TensorFlow's global random
state (initial weights) and the order of floating-point reductions inside
ops. See docs/troubleshooting.md for what stays non-deterministic on GPUs.
"""

import tensorflow as tf


def make_repeatable(seed: int, *, deterministic_ops: bool = True) -> bool:
    """Seeds Python, NumPy and TensorFlow with ``seed`` and, where no GPU
    or TPU is in use and ``deterministic_ops``, turns on TensorFlow's op
    determinism.

    On GPUs op determinism makes some training ops slower and others raise
    ``UnimplementedError`` (they have no deterministic GPU kernel), so there
    the seed fixes the initial weights, data order and augmentation, but
    reductions may still round differently from run to run.

    Args:
        seed: the run's ``--seed``.
        deterministic_ops: False for distributed runs, whose gradient
            sums are not ordered anyway.

    Returns:
        Whether op determinism is on (bit-identical reruns on this machine).
    """
    tf.keras.utils.set_random_seed(seed)
    accelerators = tf.config.list_physical_devices("GPU") + tf.config.list_physical_devices("TPU")
    if accelerators or not deterministic_ops:
        return False
    tf.config.experimental.enable_op_determinism()
    return True
