"""Learning-rate schedules of the training command: cosine decay to 0 (the
IR²Net recipes, arXiv:2210.02637) and IR-Net's ImageNet schedule, a linear
warm-up followed by step decay ×0.1 at 30, 60 and 90 % of training
(docs/irnet.md)."""

from typing import Optional

import tensorflow as tf

from ir2net_tf.training.trainer import cosine_schedule

from ir2net_tf.config import SCHEDULES  # noqa: E402  (the setting's values, declared with it)
# IR-Net's ImageNet config: ×0.1 at iterations 18,750 / 37,500 / 56,250 of 62,500.
STEP_FRACTIONS = (0.3, 0.6, 0.9)
STEP_FACTOR = 0.1


@tf.keras.utils.register_keras_serializable(package="ir2net_tf")
class WarmupStepDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``warmup_learning_rate`` to ``learning_rate`` over
    ``warmup_steps``, then ``learning_rate`` × 0.1 after each boundary (counted
    from step 0, as in IR-Net's release).

    Args:
        learning_rate: the rate after warm-up.
        total_steps: steps of the stage; boundaries at 30/60/90 % of them.
        warmup_steps: length of the warm-up (0: none).
        warmup_learning_rate: the rate at step 0 of the warm-up.
    """

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                 warmup_learning_rate: float = 0.0):
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_learning_rate = float(warmup_learning_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        boundaries = [round(f * self.total_steps) for f in STEP_FRACTIONS]
        decays = tf.add_n([tf.cast(step >= b, tf.float32) for b in boundaries])
        rate = self.learning_rate * tf.pow(STEP_FACTOR, decays)
        if self.warmup_steps > 0:
            progress = tf.minimum(step / self.warmup_steps, 1.0)
            warm = self.warmup_learning_rate + (self.learning_rate - self.warmup_learning_rate) * progress
            rate = tf.where(step < self.warmup_steps, warm, rate)
        return rate

    def get_config(self):
        return {
            "learning_rate": self.learning_rate, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps, "warmup_learning_rate": self.warmup_learning_rate,
        }


def make_schedule(kind: str, learning_rate: float, total_steps: int, *, warmup_steps: int = 0,
                  warmup_learning_rate: Optional[float] = None):
    """The stage's schedule: ``"cosine"`` (to 0, no warm-up) or ``"step"``.

    Raises:
        ValueError: an unknown kind, or a warm-up asked of the cosine schedule.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {kind!r}; choose one of {SCHEDULES}.")
    if kind == "cosine":
        if warmup_steps:
            raise ValueError("--warmup_epochs needs --lr_schedule step; the cosine schedule has no warm-up.")
        return cosine_schedule(learning_rate, total_steps)
    start = learning_rate if warmup_learning_rate is None else warmup_learning_rate
    return WarmupStepDecay(learning_rate, max(1, int(total_steps)), warmup_steps, start)
