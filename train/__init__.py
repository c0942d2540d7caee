"""``python -m train``: IR²Net training with information restriction,
distillation, two-step training and resumable runs (see ``train/__main__.py``
for the flags and README "Training" for the recipes)."""
