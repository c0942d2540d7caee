"""``python -m train`` from a checkout: the same command as ``ir2net-train``."""

from ir2net_tf.runs.cli import run

run()
