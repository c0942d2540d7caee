"""Model builders; the public entry point is ``ir2net_tf.zoo``."""
