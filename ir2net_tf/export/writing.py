"""The export's files: checked writable before the slow work, then the
``.tflite`` and its ``.json`` report written together."""

import os

from ir2net_tf._util import files
from ir2net_tf.export import report
from ir2net_tf.export.errors import DeployError


def check_writable(path: str) -> None:
    """Fails early, before a slow conversion, when ``path`` cannot be written."""
    try:
        files.check_writable(path, option="--output")
    except files.OutputError as error:
        raise DeployError(str(error)) from error


def write_out(output: str, flatbuffer: bytes, result: dict) -> None:
    """The .tflite file (only when ``result`` is OK) and its report, written
    as one unit (files.atomic_write_together): the new pair, or on any write
    failure (a full disk) the old pair untouched. A failed export removes an
    earlier export's file at ``output``, which would otherwise pass for this
    export's verified result beside a report saying ``"tflite": null``."""
    stale = []
    if not result["ok"]:
        result["tflite"] = None  # nothing written: the file would not compute what Keras does
        if os.path.exists(output):
            stale = [output]
            result["failure"] += f"; the earlier {output} was removed"
    written = {output: flatbuffer} if result["ok"] else {}
    written[report.report_path(output)] = report.to_json(result)
    files.atomic_write_together(written, remove=stale)
