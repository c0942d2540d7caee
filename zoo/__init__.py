"""``python -m zoo``: the checkout's entry point; the code is ``ir2net_tf.catalog``."""
