"""``python -m export``: a trained IR²Net model to an LCE ``.tflite`` file,
verified against Keras, with an op census and host latency report."""
