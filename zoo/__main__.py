"""``python -m zoo`` from a checkout: the same command as ``ir2net-zoo``."""

from ir2net_tf.catalog.cli import run

run()
