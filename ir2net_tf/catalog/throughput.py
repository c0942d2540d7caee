"""Training-step throughput (images per second), for benchmarks.

The IR² step (two forward and backward passes: x and the restricted x', or
one when the mask keeps every pixel) and the plain step (one pass, ordinary
Keras ``fit`` logic) are timed the same way: one compiled training function
called on a repeated in-memory batch, so that input pipelines do not count.
``step_ratios`` times the IR² step against the plain one in both of its
regimes.
"""

import time
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from ir2net_tf.training.trainer import IR2Trainer


class _StepTimer:
    """A trainer's compiled training function on a repeated batch, traced
    (and compiled) by ``warmup`` calls."""

    def __init__(self, trainer: tf.keras.Model, batch, warmup: int):
        self.iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
        self.function = trainer.make_train_function()
        start = time.perf_counter()
        for _ in range(warmup):  # the first call traces and compiles
            self.function(self.iterator)
        self.warmup_seconds = time.perf_counter() - start

    def median_step(self, steps: int) -> Tuple[float, Dict[str, float]]:
        """(median seconds per step over ``steps`` calls, the last logs)."""
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            logs = self.function(self.iterator)
            float(logs["loss"])  # wait for the step to finish
            times.append(time.perf_counter() - start)
        return float(np.median(times)), {k: float(v) for k, v in logs.items()}


def _time_train_function(trainer: tf.keras.Model, batch, steps: int, warmup: int) -> Dict[str, float]:
    timer = _StepTimer(trainer, batch, warmup)
    step, _ = timer.median_step(steps)
    return {
        "step_seconds": step,
        "images_per_second": len(batch[0]) / step,
        "warmup_seconds": timer.warmup_seconds,
    }


def _random_batch(model: tf.keras.Model, batch_size: int, seed: int):
    rng = np.random.default_rng(seed)
    shape = tuple(model.input_shape[1:])
    classes = int(model.output_shape[-1])
    return (
        tf.constant(rng.standard_normal((batch_size, *shape)), tf.float32),
        tf.constant(rng.integers(0, classes, batch_size), tf.int32),
    )


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
    batch = _random_batch(model, batch_size, seed)
    optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
    if ir2:
        trainer = IR2Trainer(model, restriction_lambda=restriction_lambda)
        trainer.compile(optimizer=optimizer)
    else:
        trainer = model
        trainer.compile(optimizer=optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return _time_train_function(trainer, batch, steps, warmup)


def step_ratios(
    model: tf.keras.Model,
    *,
    batch_size: int = 8,
    erased: float = 0.25,
    rounds: int = 7,
    steps: int = 3,
    seed: int = 0,
    jit_compile: bool = False,
) -> Dict[str, object]:
    """IR² step time over the plain step, in both regimes of the IR² step.

    One random batch, three trainers on the same ``model``: the plain step
    (``IR2Trainer`` with λ = 0: one pass), the IR² step at a λ below every
    pixel's attention ratio (the mask keeps everything: the one-pass
    shortcut) and at the λ that erases ``erased`` of the batch's pixels (two
    passes). The learning rate is 0, so the weights, and with them the masks,
    stay as they are. Each round times ``steps`` steps of each trainer in
    turn (their median is the round's time); the ratios' median and
    interquartile range over ``rounds`` rounds say how stable they are on a
    shared machine.

    Args:
        model: a zoo model that outputs logits (``classifier_activation=None``).
        batch_size: images per step.
        erased: fraction of the pixels the erasing regime's λ erases.
        rounds: timing rounds.
        steps: timed steps per trainer and round.
        seed: seed of the random batch.
        jit_compile: compile the steps with XLA.

    Returns:
        A dict: ``lambda`` and ``kept`` (the kept fraction the step measured)
        per regime, ``plain_seconds`` (median step), and per regime
        ``ratio`` = {"median", "q1", "q3"} with the ratios of every round.
    """
    from ir2net_tf.training.visualize import erasing_lambdas, restriction_views

    batch = _random_batch(model, batch_size, seed)
    attention = restriction_views(model, batch[0].numpy())["attention"]
    ratios = attention / np.maximum(attention.mean(axis=(1, 2), keepdims=True), np.finfo(np.float64).tiny)
    lambdas = {"kept": max(float(ratios.min()) / 2.0, 1e-9), "erasing": erasing_lambdas(attention, (erased,))[erased]}
    timers = {}
    for regime, lam in (("plain", 0.0), *lambdas.items()):
        trainer = IR2Trainer(model, restriction_lambda=lam)
        trainer.compile(optimizer=tf.keras.optimizers.SGD(0.0, momentum=0.9), jit_compile=jit_compile)
        timers[regime] = _StepTimer(trainer, batch, warmup=2)
    seconds = {regime: [] for regime in timers}
    kept = {}
    for _ in range(rounds):
        for regime, timer in timers.items():
            step, logs = timer.median_step(steps)
            seconds[regime].append(step)
            kept[regime] = logs.get("kept")
    result = {"plain_seconds": float(np.median(seconds["plain"])), "batch_size": batch_size, "rounds": rounds,
              "steps": steps}
    for regime, lam in lambdas.items():
        per_round = np.array(seconds[regime]) / np.array(seconds["plain"])
        q1, median, q3 = np.percentile(per_round, [25, 50, 75])
        result[regime] = {
            "lambda": lam, "kept": kept[regime], "seconds": float(np.median(seconds[regime])),
            "ratio": {"median": float(median), "q1": float(q1), "q3": float(q3), "rounds": per_round.tolist()},
        }
    return result
