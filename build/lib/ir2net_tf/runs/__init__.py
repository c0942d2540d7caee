"""A training run: ``python -m train`` / ``ir2net-train`` (``cli``), its recipes, model
directory, checkpoints and resumption."""
