"""Helpers any layer may use: atomic files, command names, figures."""
