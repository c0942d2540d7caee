"""``python -m zoo`` / ``ir2net-zoo``: the model catalog, benchmark, restriction views and
the PyTorch checkpoint import."""
