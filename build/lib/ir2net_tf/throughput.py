"""Training-step throughput (images per second), for benchmarks.

The IR² step (two forward and backward passes: x and the restricted x') and
the plain step (one pass, ordinary Keras ``fit`` logic) are timed the same
way: one compiled training function called on a repeated in-memory batch, so
that input pipelines do not count.
"""

import time
from typing import Dict

import numpy as np
import tensorflow as tf

from ir2net_tf.training import IR2Trainer


def _time_train_function(trainer: tf.keras.Model, batch, steps: int, warmup: int) -> Dict[str, float]:
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    train_function = trainer.make_train_function()
    start = time.perf_counter()
    for _ in range(warmup):  # the first call traces and compiles
        train_function(iterator)
    compile_seconds = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        logs = train_function(iterator)
        float(logs["loss"])  # wait for the step to finish
        times.append(time.perf_counter() - start)
    step = float(np.median(times))
    return {
        "step_seconds": step,
        "images_per_second": len(batch[0]) / step,
        "warmup_seconds": compile_seconds,
    }


def train_throughput(
    model: tf.keras.Model,
    *,
    ir2: bool,
    batch_size: int = 8,
    steps: int = 3,
    warmup: int = 1,
    restriction_lambda: float = 0.15,
    seed: int = 0,
) -> Dict[str, float]:
    """Median images/s of ``model``'s training step on random data.

    ``ir2=True`` times the IR² step (``IR2Trainer``: ``model`` must output
    logits and have the ``final_features`` layer); ``ir2=False`` the plain
    Keras step with cross-entropy, which works for any classifier (larq-zoo's
    softmax models included: the loss's value does not change its cost).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(model.input_shape[1:])
    classes = int(model.output_shape[-1])
    batch = (
        tf.constant(rng.standard_normal((batch_size, *shape)), tf.float32),
        tf.constant(rng.integers(0, classes, batch_size), tf.int32),
    )
    optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
    if ir2:
        trainer = IR2Trainer(model, restriction_lambda=restriction_lambda)
        trainer.compile(optimizer=optimizer)
    else:
        trainer = model
        trainer.compile(optimizer=optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return _time_train_function(trainer, batch, steps, warmup)
