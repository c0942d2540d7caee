"""``python -m export`` from a checkout: the same command as ``ir2net-export``."""

from ir2net_tf.export.cli import run

run()
