"""All-or-nothing weight loading.

Keras' ``load_weights`` of a ``.weights.h5`` file matches layers by class
and order, not by name, and silently skips what it cannot place: weights of
a model with the recovery head load "successfully" into one without it,
leaving a model that computes something else. ``load_weights`` here compares
the file's layers and weight shapes with the model's first and refuses,
naming what is missing or extra, unless every weight has its place.
"""

import os
import zipfile
from typing import Dict, List, Tuple

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import h5py
import tensorflow as tf

Layout = Dict[str, Tuple[int, ...]]  # weight path in the file → shape
# A compiled model's files also hold its training state under these top-level
# groups; they are not the model's weights, and Keras loads them only into a
# model compiled the same way.
TRAINING_STATE = ("optimizer", "metrics")
_SHOWN = 6  # names listed per kind of difference


class WeightsMismatch(ValueError):
    """A weights file that does not fit the model; the message says how."""


class _ShapeRecorder:
    """A stand-in for Keras' H5 weights store that keeps only the shapes."""

    def __init__(self):
        self.layout: Layout = {}

    def make(self, path):
        recorder = self

        class Group(dict):
            def __setitem__(self, key, value):
                recorder.layout[f"{path}/vars/{key}" if path else f"vars/{key}"] = tuple(value.shape)

        return Group()


def model_layout(model: tf.keras.Model) -> Layout:
    """The weight paths and shapes ``model.save_weights("x.weights.h5")``
    would write (Keras' own traversal, without writing anything)."""
    from tf_keras.src.saving import saving_lib

    recorder = _ShapeRecorder()
    saving_lib._save_state(model, weights_store=recorder, assets_store=None, inner_path="", visited_trackables=set())
    return recorder.layout


def _h5_layout(handle) -> Layout:
    layout = {}
    handle.visititems(lambda key, item: layout.__setitem__(key, tuple(item.shape))
                      if isinstance(item, h5py.Dataset) else None)
    return layout


def _layer_names(model: tf.keras.Model) -> Dict[str, str]:
    """File group ("layers/conv2d_3") → the model's layer name, the way Keras
    numbers a model's layers by class."""
    from tf_keras.src.utils import generic_utils

    names, used = {}, {}
    for layer in model.layers:
        name = generic_utils.to_snake_case(type(layer).__name__)
        used[name] = used.get(name, -1) + 1
        names[f"layers/{name}_{used[name]}" if used[name] else f"layers/{name}"] = layer.name
    return names


# Schedule state a file may lack: the EDE temperature of IR-Net's kernel
# quantizer, which a stage-1 model does not have (binarization.py).
_OPTIONAL = "/kernel_quantizer/vars/"
# Where a binarizer's own state lives: files and models that differ only
# there were built with different binarizers.
_QUANTIZER_GROUP = "_quantizer"


def _weights_only(layout: Layout) -> Layout:
    return {p: shape for p, shape in layout.items() if p.split("/", 1)[0] not in TRAINING_STATE}


def _groups(paths) -> List[str]:
    return sorted({p.rsplit("/vars/", 1)[0] for p in paths})


def _listing(items: List[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def compare(model: tf.keras.Model, path: str, file_layout: Layout) -> None:
    """Raises WeightsMismatch unless ``file_layout`` holds exactly the model's
    weights, with the model's shapes."""
    expected, file_layout = _weights_only(model_layout(model)), _weights_only(file_layout)
    expected = {p: shape for p, shape in expected.items() if p in file_layout or _OPTIONAL not in p}
    if expected == file_layout:
        return
    layer_name = _layer_names(model)
    missing = _groups(set(expected) - set(file_layout))
    extra = _groups(set(file_layout) - set(expected))
    reshaped = {}  # first differing weight per layer
    for p in expected:
        if p in file_layout and expected[p] != file_layout[p]:
            reshaped.setdefault(p.rsplit("/vars/", 1)[0], p)
    if (missing or extra) and not reshaped and all(g.endswith(_QUANTIZER_GROUP) for g in missing + extra):
        has = "IR-Net's (EDE/Libra-PB)" if extra else "Bi-Real's (approx_sign/ste_sign)"
        raise WeightsMismatch(
            f"The weights file {path!r} does not fit model {model.name!r}: its binary convolutions were trained "
            f"with {has} binarizer and the model is built with the other. Nothing was loaded. Pass the binarizer "
            f"the weights were trained with: --binarizer {'irnet' if extra else 'bireal'} (a model directory's "
            "config.json has it)."
        )
    problems = []
    if missing:
        problems.append(f"the file has no weights for {len(missing)} of the model's layers "
                        f"({_listing([layer_name.get(g, g) for g in missing])})")
    if extra:
        problems.append(f"the file holds weights for {len(extra)} layers the model does not have "
                        f"({_listing(extra)})")
    if reshaped:
        problems.append("shapes differ: " + _listing([
            f"{layer_name.get(group, group)} model {expected[p]} vs file {file_layout[p]}"
            for group, p in reshaped.items()]))
    raise WeightsMismatch(
        f"The weights file {path!r} does not fit model {model.name!r}: {'; '.join(problems)}. Nothing was "
        "loaded. Build the model exactly as the run that saved the weights (model, variant, input size, "
        "number of classes, recovery head on or off; a model directory's config.json has them)."
    )


def _legacy_layout(handle) -> List[Tuple[str, List[Tuple[int, ...]]]]:
    """(layer name, weight shapes) per layer with weights, in the file's order
    (Keras' older HDF5 format, which loads by position)."""
    if "layer_names" not in handle.attrs and "model_weights" in handle:
        handle = handle["model_weights"]
    layers = []
    for name in handle.attrs.get("layer_names", []):
        name = name.decode() if isinstance(name, bytes) else name
        group = handle[name]
        weights = [w.decode() if isinstance(w, bytes) else w for w in group.attrs.get("weight_names", [])]
        if weights:
            layers.append((name, [tuple(group[w].shape) for w in weights]))
    return layers


def _compare_legacy(model: tf.keras.Model, path: str, handle) -> None:
    found = _legacy_layout(handle)
    wanted = [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers if layer.weights]
    if [shapes for _, shapes in found] == [shapes for _, shapes in wanted]:
        return
    if len(found) != len(wanted):
        problem = f"the file holds weights for {len(found)} layers, the model has {len(wanted)}"
    else:
        index = next(i for i, (a, b) in enumerate(zip(found, wanted)) if a[1] != b[1])
        problem = (f"layer {index + 1} with weights is {wanted[index][0]!r} {wanted[index][1]} in the model "
                   f"but {found[index][0]!r} {found[index][1]} in the file")
    raise WeightsMismatch(
        f"The weights file {path!r} does not fit model {model.name!r}: {problem}. Nothing was loaded. Build "
        "the model exactly as the one that saved the weights."
    )


def check(model: tf.keras.Model, path) -> None:
    """Raises WeightsMismatch (a ValueError) unless every weight in the file
    ``path`` has its place in ``model`` and every weight of the model is in
    the file; loads nothing."""
    path = os.fspath(path)
    if not (os.path.isfile(path) or os.path.isfile(path + ".index")):  # .index: a TensorFlow checkpoint
        raise WeightsMismatch(f"The weights file {path!r} does not exist.")
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as inner, \
                    h5py.File(inner, "r") as handle:
                compare(model, path, _h5_layout(handle))
        elif path.endswith(".weights.h5"):
            with h5py.File(path, "r") as handle:
                compare(model, path, _h5_layout(handle))
        elif path.endswith((".h5", ".hdf5")):
            with h5py.File(path, "r") as handle:
                _compare_legacy(model, path, handle)
        elif os.path.isfile(path):
            _check_format_matches_name(path)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise WeightsMismatch(
            f"The weights file {path!r} cannot be read ({error}): it is damaged, empty or not a Keras weights "
            "file. Use the .weights.h5 file a run wrote (best.weights.h5 or final.weights.h5)."
        ) from error


# What a file starts with, for the formats Keras picks by the name's suffix.
SIGNATURES = {b"\x89HDF\r\n\x1a\n": "an HDF5 weights file", b"PK\x03\x04": "a zip (.keras) file"}


def _check_format_matches_name(path: str) -> None:
    """Keras reads any name other than .weights.h5/.h5/.keras as a TensorFlow
    checkpoint: say so when the file is in fact one of those formats."""
    with open(path, "rb") as f:
        head = f.read(8)
    for signature, kind in SIGNATURES.items():
        if head.startswith(signature):
            raise WeightsMismatch(
                f"The weights file {path!r} is {kind}, but Keras chooses the format by the name and reads this "
                "name as a TensorFlow checkpoint. Rename it to end in .weights.h5 (Keras weights), .h5 (legacy "
                "HDF5) or .keras, as it was saved."
            )


def load_weights(model: tf.keras.Model, path) -> None:
    """Loads the weights file ``path`` into ``model``, all of it or nothing.

    ``.weights.h5``, ``.keras`` and legacy ``.h5`` files are compared with the
    model before anything is assigned; TensorFlow checkpoints (any other name)
    must match every object of the model.

    Args:
        model: the Keras model to fill.
        path: the weights file.

    Raises:
        WeightsMismatch: the file is missing, unreadable or does not fit
            the model; the message names the layers at fault.
    """
    path = os.fspath(path)
    check(model, path)
    try:
        status = model.load_weights(path)
        if status is not None and not path.endswith((".h5", ".hdf5", ".keras")):
            status.assert_existing_objects_matched()
    except (ValueError, tf.errors.OpError, OSError, AssertionError) as error:
        raise WeightsMismatch(
            f"The weights file {path!r} does not fit model {model.name!r}: {error}. Build the model exactly as "
            "the run that saved it."
        ) from error
