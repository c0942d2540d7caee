"""The training step: ``IR2Trainer`` (``trainer``), the learning-rate
schedules (``schedules``) and the restriction images logged while training
(``visualize``). ``from ir2net_tf.training import IR2Trainer`` keeps working."""

from ir2net_tf.training.trainer import (  # noqa: F401  (the names of the former module ir2net_tf.training)
    IR2Trainer,
    cross_entropy,
    decayed_variables,
    distillation,
    make_optimizer,
    moving_statistics,
    shortcut_is_exact,
)
