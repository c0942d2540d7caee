"""``python -m export`` / ``ir2net-export``: a model to an LCE ``.tflite`` file, verified."""
