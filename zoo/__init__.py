"""``python -m zoo``: the catalog of IR²Net models (see ``python -m zoo --help``)."""
