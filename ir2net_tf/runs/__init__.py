"""A training run: ``python -m train`` / ``ir2net-train`` (``cli``), its recipes, model
directory, checkpoints and resumption. From Python: ``train(TrainConfig(...))``
(``api``; the configuration is ``ir2net_tf.config.TrainConfig``)."""

from ir2net_tf.runs.api import TrainResult, evaluate, train  # noqa: F401  (light: no TensorFlow)
