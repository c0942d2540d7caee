"""Make sure TensorFlow uses Keras 2 (``tf_keras``), which Larq requires, and
import it without the start-up lines a user cannot act on.

TensorFlow 2.16 picks its Keras when it is first imported: Keras 3 unless
``TF_USE_LEGACY_KERAS=1`` is set by then. Importing ``ir2net_tf`` sets it, so
a user never has to.

TensorFlow's pip wheel also prints, on every import and on machines without a
GPU too, "Unable to register cuDNN/cuFFT/cuBLAS factory" errors (its CUDA
plugins registering twice) and notices about oneDNN and CPU instructions.
``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 here (INFO and WARNING hidden; set it
to 0 yourself to see them), and the registration errors, which that level
does not hide, are dropped from the import's output; every other line passes
through.
"""

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

_FIX = (
    "Set TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported (for "
    "example `export TF_USE_LEGACY_KERAS=1` in the shell, or "
    "`os.environ['TF_USE_LEGACY_KERAS'] = '1'` at the very top of your script), "
    "or import ir2net_tf before tensorflow."
)

# The import-time lines of TensorFlow 2.16's wheel that carry no information.
_NOISE = re.compile(
    r"Unable to register (cuDNN|cuFFT|cuBLAS) factory"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions:"
    r"|TF-TRT Warning: Could not find TensorRT"
)


def ensure_legacy_keras() -> None:
    """Select Keras 2 for TensorFlow, to be imported (filtered) when something
    first imports it, or fail loudly if TensorFlow was already imported with
    Keras 3."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # Deferred to the first ``import tensorflow`` (about 3 s): a command
        # that needs none, as ``python -m zoo list``, never pays for it.
        if not any(isinstance(finder, _FilteredTensorFlowImport) for finder in sys.meta_path):
            sys.meta_path.insert(0, _FilteredTensorFlowImport())
        return
    # TensorFlow reads TF_USE_LEGACY_KERAS once, at its own import, and records
    # it here; set later, tf.keras names tf_keras while TensorFlow's own
    # optimizers stay Keras 3's (Larq then fails on their attributes).
    if getattr(tf, "_tf_uses_legacy_keras", True) is False:
        raise ImportError(
            "TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set (setting it later has no effect), "
            "so it uses Keras 3, but ir2net_tf and Larq need Keras 2 (tf_keras). " + _FIX
        )
    keras_module = getattr(getattr(tf, "keras", None), "__name__", "")
    if not keras_module.startswith("tf_keras"):
        raise ImportError(
            "TensorFlow was imported with Keras 3 "
            f"(tf.keras is {keras_module or 'unknown'}), but ir2net_tf and Larq "
            "need Keras 2 (tf_keras). " + _FIX
        )


class _LoadedModule(importlib.abc.Loader):
    """Hands the import system a module that is already loaded."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


class _FilteredTensorFlowImport(importlib.abc.MetaPathFinder):
    """On the first ``import tensorflow``, imports it through the ordinary
    finders with its start-up noise filtered (``_import_tensorflow_filtered``);
    once TensorFlow and Larq are both loaded (or TensorFlow without Larq),
    registers our layers and leaves ``sys.meta_path``.

    Larq imports TensorFlow from inside its own import: registering then
    would import our layers, which use Larq, while Larq is half loaded. So
    the first ``import larq`` is watched too, and the layers are registered
    when it is complete."""

    WATCHED = ("tensorflow", "larq")

    def __init__(self):
        self.busy = set()  # the names this finder is importing now
        self.registering = False

    def find_spec(self, name, path=None, target=None):
        if name not in self.WATCHED or name in self.busy or name in sys.modules:
            return None
        self.busy.add(name)
        try:
            if name == "tensorflow":
                _import_tensorflow_filtered()
            else:
                importlib.import_module(name)
        finally:
            self.busy.discard(name)
        module = sys.modules[name]
        self.register_when_ready()
        return importlib.util.spec_from_loader(name, _LoadedModule(module), origin=getattr(module, "__file__", None))

    def register_when_ready(self) -> None:
        if self.registering or "tensorflow" not in sys.modules or any(
                _initializing(sys.modules.get(n)) for n in self.WATCHED):
            return
        self.registering = True
        try:
            register_layers()
        finally:
            self.registering = False
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def _initializing(module) -> bool:
    """Whether ``module`` is being imported (its code still running)."""
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


# Modules whose import registers our Keras layers and Larq quantizers (and
# Larq's own layers) by name, so that saved models load back without
# custom_objects as soon as TensorFlow is there.
REGISTERING = ("ir2net_tf.nn.layers", "ir2net_tf.nn.recovery", "ir2net_tf.nn.restriction")


def register_layers() -> None:
    for name in REGISTERING:
        importlib.import_module(name)


def _import_tensorflow_filtered() -> None:
    """``import tensorflow`` with file descriptor 2 sent to a temporary file
    (its C++ logging bypasses Python's ``sys.stderr``), then the lines that
    are not known noise written to the real stderr."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters): import plainly
        import tensorflow  # noqa: F401

        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if not _NOISE.search(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
