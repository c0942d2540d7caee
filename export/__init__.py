"""``python -m export``: the checkout's entry point; the code is ``ir2net_tf.export``."""
