"""Where the Keras model to export comes from: a training run's model
directory (``config.json`` + weights, written by ``python -m train``) or a
zoo model name with its options and an optional weights file."""

import json
import os
import re
from typing import Optional, Tuple

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from ir2net_tf import zoo
from ir2net_tf.deploy import DeployError
from ir2net_tf.weights import WeightsMismatch, load_weights

CONFIG = "config.json"
# Preference order when the config does not name its weights files.
WEIGHTS_FILES = {"best": "best.weights.h5", "final": "final.weights.h5"}
BUILD_KEYS = ("variant", "num_classes", "pad_values", "binary_weights", "recovery", "padding", "binarizer")


def read_config(model_dir: str) -> dict:
    path = os.path.join(model_dir, CONFIG)
    if not os.path.isdir(model_dir):
        raise DeployError(f"Model directory {model_dir!r} does not exist.")
    if not os.path.isfile(path):
        raise DeployError(
            f"{model_dir!r} has no {CONFIG}: it is not a model directory written by "
            "`python -m train`. Pass --model NAME [--weights FILE] to export a zoo model instead."
        )
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        raise DeployError(f"Cannot read {path!r}: {error}.") from error
    if "model" not in config:
        raise DeployError(f"{path!r} names no model (key 'model').")
    return config


def run_weights(model_dir: str, config: dict) -> str:
    """The run's best weights, else its final weights."""
    names = dict(WEIGHTS_FILES)
    names.update(config.get("weights") or {})
    for kind in ("best", "final"):
        path = os.path.join(model_dir, names[kind])
        if os.path.isfile(path):
            return path
    raise DeployError(
        f"{model_dir!r} holds no weights ({names['best']} or {names['final']}): the run has not "
        "finished a stage yet. Train it to the end, or pass --weights FILE."
    )


def _mismatch(error: Exception, weights: str, model_name: str) -> DeployError:
    # Keras names the first variable that did not fit ("stem_conv/kernel:0").
    match = re.search(r"variable '\s*([^/']+)/", str(error))
    where = f" at layer {match.group(1)!r}" if match else ""
    shapes = re.search(r"variable shape (\([^)]*\)), and the assigned value shape (\([^)]*\))", str(error))
    detail = f" (model expects {shapes.group(1)}, file holds {shapes.group(2)})" if shapes else ""
    return DeployError(
        f"The weights file {weights!r} does not fit {model_name}{where}{detail}. Export with the "
        "model, variant, input size, number of classes and --no-recovery setting of the run that "
        "saved it (a model directory's config.json has them)."
    )


def model_spec(name: str):
    """The zoo model's description; DeployError for unknown names."""
    try:
        return zoo.get_spec(name)
    except ValueError as error:
        raise DeployError(str(error)) from error


def parse_variant(spec, variant):
    """The canonical variant name; DeployError for unknown variants."""
    try:
        return spec.parse_variant(variant)
    except ValueError as error:
        raise DeployError(str(error)) from error


def build_model(
    name: str,
    *,
    weights: Optional[str] = None,
    input_size: Optional[int] = None,
    logits: bool = False,
    **options,
):
    """A zoo model with ``weights`` loaded; DeployError for unknown names,
    bad options and weights that do not fit."""
    spec = model_spec(name)
    if weights is not None and not os.path.isfile(weights):
        raise DeployError(f"Weights file {weights!r} does not exist.")
    size = input_size or spec.input_size
    kwargs = {k: v for k, v in options.items() if v is not None or k == "variant"}
    try:
        model = zoo.build(
            name, input_shape=(size, size, 3), classifier_activation=None if logits else "softmax", **kwargs
        )
    except ValueError as error:  # unknown variant, size not a multiple, ...
        raise DeployError(str(error)) from error
    if weights is not None:
        try:
            load_weights(model, weights)  # all or nothing
        except WeightsMismatch as error:
            raise DeployError(str(error)) from error
        except Exception as error:  # Keras raises ValueError, OSError, OpError, ...
            raise _mismatch(error, weights, f"{name} (variant {kwargs.get('variant')})") from error
    return model


def from_model_dir(model_dir: str, *, weights: Optional[str] = None, logits: bool = False) -> Tuple[object, dict]:
    """The run's model with its best (else final) weights, and its config."""
    config = read_config(model_dir)
    weights = weights or run_weights(model_dir, config)
    shape = config.get("input_shape") or [None]
    options = {key: config[key] for key in BUILD_KEYS if key in config}
    model = build_model(config["model"], weights=weights, input_size=shape[0], logits=logits, **options)
    return model, {"model": config["model"], "weights": weights, **options, "dataset": config.get("dataset")}
