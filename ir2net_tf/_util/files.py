"""Writing results so that nothing is ever half-written, and checking early
that they can be written at all.

Every file the project writes goes through ``atomic_write`` (bytes) or
``atomic_save`` (a writer such as Keras' ``save_weights`` that wants a path):
the data goes to a temporary file in the destination folder, then
``os.replace`` puts it in place, so a reader, a crash or a kill never sees a
partial file, and a failed write leaves no temporary file behind.
"""

import errno
import os
import tempfile
from typing import Callable, Dict, Iterable, Optional


class OutputError(ValueError):
    """An output path that cannot be written; the message says what to do."""


def _permissions() -> int:
    # mkstemp creates 0600 files; results should get the user's usual mode.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_save(path, save: Callable[[str], None], *, suffix: Optional[str] = None) -> None:
    """Calls ``save(temporary_path)`` and moves the result to ``path``.

    Args:
        path: the destination.
        save: writes the file it is given (e.g. ``model.save_weights``).
        suffix: the temporary file's suffix; default: ``path``'s whole
            suffix (``.weights.h5``), since writers such as Keras choose the
            format from the file name.
    """
    path = os.fspath(path)
    tmp = _written(path, save, suffix)
    try:
        os.replace(tmp, path)
    except OSError as error:  # e.g. path is a directory
        raise cannot_write(path, error) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _written(path: str, save: Callable[[str], None], suffix: Optional[str]) -> str:
    """A complete temporary file beside ``path`` that ``save`` wrote; on any
    failure nothing is left, and a full disk (or any OSError) is an
    OutputError naming ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    if suffix is None:
        suffix = name[name.index("."):] if "." in name.lstrip(".") else ""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp" + suffix)
    except OSError as error:
        raise cannot_write(path, error) from None
    os.close(fd)
    try:
        save(tmp)
        os.chmod(tmp, _permissions())
    except BaseException as error:
        os.remove(tmp)
        if isinstance(error, OSError):
            raise cannot_write(path, error) from None
        raise
    return tmp


def cannot_write(path, error: BaseException) -> "OutputError":
    """The one-line error for ``path`` that could not be written (a full
    disk, a read-only folder): what happened, and that nothing was changed."""
    text = str(error).strip()
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in text:  # h5py: in its text
        reason = "No space left on device"
    else:
        reason = getattr(error, "strerror", None) or (text.splitlines()[0] if text else type(error).__name__)
    return OutputError(f"Cannot write {os.fspath(path)!r}: {reason}. Nothing there was changed; free some space "
                       "or choose another location, then run the same command again.")


def atomic_write_together(files: Dict[str, bytes], remove: Iterable[str] = ()) -> None:
    """Writes every file of ``files`` (path → bytes) and removes ``remove``
    as one unit: all are written to temporary files first, so that when one
    cannot be written (a full disk) none is changed; then they are put in
    place. For outputs that must agree, such as a ``.tflite`` and its report."""
    written = {}
    try:
        for path, data in files.items():
            written[path] = _written(path, lambda tmp, data=data: _write_bytes(tmp, data), "")
        for path in remove:
            if os.path.exists(path):
                os.remove(path)
        for path, tmp in written.items():
            try:
                os.replace(tmp, path)
            except OSError as error:
                raise cannot_write(path, error) from None
    finally:
        for tmp in written.values():
            if os.path.exists(tmp):
                os.remove(tmp)


def _write_bytes(tmp: str, data: bytes) -> None:
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see the module docstring)."""
    atomic_save(path, lambda tmp: _write_bytes(tmp, data), suffix="")


def save_weights(model, path) -> None:
    """Keras weights, atomically. ``*.weights.h5`` is Keras' weights format,
    any other ``*.h5`` the legacy HDF5 format; the temporary file keeps the
    suffix so that it holds what ``load_weights(path)`` expects."""
    atomic_save(path, model.save_weights)


def check_writable(path, *, option: str = "--output") -> str:
    """Fails early, before slow work, when the file ``path`` cannot be
    written; ``option`` names the flag to change in the message."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputError(f"{option} {path!r} is a directory; give a file name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"The folder {folder!r} of {option} {path!r} does not exist; create it first.")
    _write_test(folder, option)
    return path


def check_writable_dir(folder, *, option: str) -> str:
    """Creates ``folder`` if needed and fails early when nothing can be
    written in it; returns its absolute path."""
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    refuse_file(folder, option)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{option} {folder!r} is not writable ({error.strerror or error}); choose another.") from error
    _write_test(folder, option)
    return folder


def refuse_file(folder, option: str) -> None:
    """An OutputError when the folder ``folder`` is in fact a file."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"{option} {os.fspath(folder)!r} is a file, not a folder; choose another {option}.")


def _write_test(folder: str, option: str) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise OutputError(f"{folder!r} is not writable ({error.strerror or error}); choose another {option}.") from error
