"""``python -m train``: the checkout's entry point; the code is ``ir2net_tf.runs``."""
