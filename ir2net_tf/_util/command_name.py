"""The name of the command as the user typed it, for usage lines and help."""

import os
import sys


def command_name(module: str) -> str:
    """``ir2net-train`` when started by its console script, else ``python -m
    train`` (``module``): the checkout's entry points, and in-process callers."""
    typed = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "")
    return typed if typed.startswith("ir2net-") else f"python -m {module}"
