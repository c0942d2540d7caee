"""``--teacher``: a Keras Applications name or a saved Keras model."""

import importlib
import os

import tensorflow as tf

from ir2net_tf.data import IMAGENET_MEAN, IMAGENET_STD


def _application(name: str):
    builder = getattr(tf.keras.applications, name, None)
    if builder is None or not callable(builder) or not name[:1].isupper():
        choices = sorted(n for n in dir(tf.keras.applications) if n[:1].isupper())
        raise ValueError(
            f"Unknown teacher {name!r}: not a saved Keras model path nor a Keras Applications "
            f"model; choose a path or one of {choices}."
        )
    return builder


def _load_saved(path: str):
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 — Keras raises OSError, ValueError, ImportError, ...
        raise ValueError(
            f"--teacher {path!r} is not a saved Keras model ({type(error).__name__}: {error}). Pass a file "
            "written by model.save() (.keras or .h5), a Keras Applications name, or '' for no distillation."
        ) from error


def check_saved_teacher(path: str, model, input_shape) -> None:
    """A saved teacher must take the student's input and output one score
    per class: (batch, classes)."""
    expected = tuple(input_shape)
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ValueError(f"--teacher {path!r} takes {len(inputs)} inputs; a teacher takes one image batch.")
    got = tuple(inputs[0].shape[1:])
    if len(got) != len(expected) or any(g is not None and g != e for g, e in zip(got, expected)):
        raise ValueError(
            f"--teacher {path!r} takes inputs of shape {got}, the student {expected} (--image_size and 3 "
            "channels); save a teacher for that input size."
        )
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or outputs[0].shape.rank != 2:
        shapes = [tuple(o.shape) for o in outputs]
        raise ValueError(
            f"--teacher {path!r} outputs {shapes}; a teacher outputs one (batch, classes) tensor of class scores."
        )


def load_teacher(spec: str, input_shape, num_classes: int):
    """(teacher model on our normalized input, whether it outputs logits), or
    (None, True) when ``spec`` is empty.

    A saved model must take the same ImageNet-normalized input as the student.
    A Keras Applications model is loaded with ImageNet weights (needs the
    network once) and given its own preprocessing, undoing ours first.
    """
    if not spec:
        return None, True
    if os.path.exists(spec):
        model = _load_saved(spec)
        check_saved_teacher(spec, model, input_shape)
        last = model.layers[-1]
        logits = getattr(getattr(last, "activation", None), "__name__", "linear") != "softmax"
    else:
        builder = _application(spec)
        try:
            network = builder(weights="imagenet", input_shape=tuple(input_shape), classifier_activation=None)
        except Exception as error:  # noqa: BLE001 — offline, or an unsupported input size
            raise ValueError(
                f"Could not load teacher {spec} with ImageNet weights: {type(error).__name__}: {error}. "
                "It needs the network once (Keras caches the weights in ~/.keras/models); offline, "
                "pass --teacher=PATH to a saved Keras model, or --teacher='' for no distillation."
            ) from error
        preprocess = importlib.import_module(builder.__module__).preprocess_input
        inputs = tf.keras.Input(tuple(input_shape))
        pixels = (inputs * tf.constant(IMAGENET_STD) + tf.constant(IMAGENET_MEAN)) * 255.0
        model = tf.keras.Model(inputs, network(preprocess(pixels)), name=f"teacher_{spec}")
        logits = True
    classes = int(model.output.shape[-1])
    if classes != num_classes:
        raise ValueError(
            f"Teacher {spec!r} predicts {classes} classes but the dataset has {num_classes}; "
            "distill from a teacher trained on the same classes."
        )
    return model, logits
