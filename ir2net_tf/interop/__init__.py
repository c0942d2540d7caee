"""Other frameworks' checkpoints: the authors' PyTorch weights (``pytorch``)."""
