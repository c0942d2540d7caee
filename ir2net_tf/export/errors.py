"""The export's errors: light (no TensorFlow), so that a command can catch
them before it loads anything."""


class DeployError(Exception):
    """A deployment step failed; the message says what and how to fix it."""



class ExportError(DeployError, ValueError):
    """What ``export_model`` raises for bad input: a model, run directory,
    option or file it cannot export; the message is one line that says what
    and how to fix it (the same line ``python -m export`` prints)."""
