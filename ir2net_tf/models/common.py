"""What every zoo builder shares: argument checks, the input, the recovery head
and classifier on top of a backbone, weight loading, and access to F."""

import os
from typing import Callable, Optional, Sequence, Tuple

import tensorflow as tf

from ir2net_tf.layers import batch_norm, classifier_pool
from ir2net_tf.recovery import FusionHead, recover

# An identity layer whose output is the final backbone feature map F: what
# restriction reads. Found by name, so it survives saving and loading.
FEATURES_LAYER = "final_features"


def check_arguments(
    *, weights, include_top: bool, num_classes: Optional[int], default_classes: int
) -> int:
    """Validates the larq-zoo style arguments and returns the class count."""
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"weights must be None (random initialization) or the path to a weights "
            f"file; got {weights!r}."
        )
    if weights is not None and not os.path.exists(weights):
        hint = (
            " There are no downloadable pretrained weights: train with "
            "`python -m train` and pass the saved weights' path."
            if str(weights) == "imagenet"
            else ""
        )
        raise ValueError(f"weights file {str(weights)!r} does not exist.{hint}")
    if not include_top:
        if num_classes is not None:
            raise ValueError(
                "num_classes is only used with include_top=True; drop it or set "
                "include_top=True."
            )
        return default_classes
    if num_classes is None:
        return default_classes
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes}.")
    return int(num_classes)


def model_input(
    input_shape: Optional[Sequence[int]],
    input_tensor,
    *,
    default_size: int,
    multiple: int,
    model_name: str,
):
    """The input layer, checked: 3 channels, a static size that is a multiple of
    ``multiple`` (the model's total stride, so that every tap pools evenly)."""
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise ValueError(
                f"input_shape {tuple(input_shape)} disagrees with input_tensor's "
                f"shape {shape}; pass one of them."
            )
    else:
        shape = tuple(input_shape) if input_shape is not None else (default_size, default_size, 3)
    example = f"e.g. input_shape=({default_size}, {default_size}, 3)"
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(
            f"{model_name} takes (height, width, 3) RGB images; got input shape {shape} "
            f"({example})."
        )
    height, width = shape[:2]
    for size in (height, width):
        if size is None or size < multiple or size % multiple:
            raise ValueError(
                f"{model_name} needs a fixed height and width that are multiples of "
                f"{multiple}, the size its recovery taps pool by; got {shape[:2]} "
                f"({example})."
            )
    if input_tensor is None:
        return tf.keras.layers.Input(shape=shape, name="image")
    if not tf.keras.backend.is_keras_tensor(input_tensor):
        return tf.keras.layers.Input(tensor=input_tensor, shape=shape, name="image")
    return input_tensor


def check_variant(variant, choices: Sequence) -> object:
    if variant in choices:
        return variant
    if isinstance(variant, FusionHead):
        return variant
    raise ValueError(
        f"Unknown variant {variant!r}; choose one of "
        f"{[c for c in choices]} or pass a ir2net_tf.recovery.FusionHead."
    )


def build_top(
    inputs,
    taps: Sequence[tf.Tensor],
    final,
    *,
    name: str,
    recovery: bool,
    head,
    act: str,
    include_top: bool,
    num_classes: int,
    classifier_activation: Optional[str],
    final_batch_norm: Optional[bool] = None,
    flatten: bool = False,
    out_channels: Optional[int] = None,
    weights=None,
) -> tf.keras.Model:
    """Recovery head (if ``recovery``) and classifier on top of a backbone.

    ``flatten`` selects Flatten instead of global average pooling before the
    classifier (VGG-Small); ``final_batch_norm`` the BatchNorm before the Dense
    layer: ``None`` (default) adds it with recovery only (the recovery models
    have it, the bare backbones do not); ``True``/``False`` always/never (the
    IR-Net models have it without recovery).
    """
    final = tf.keras.layers.Activation("linear", name=FEATURES_LAYER)(final)
    x = final
    if recovery:
        x = recover(taps, final, out_channels=out_channels, head=head, act=act)
    if include_top:
        if flatten:
            x = tf.keras.layers.Flatten(name="classifier_flatten")(x)
        else:
            x = classifier_pool(x, name="classifier")
        if final_batch_norm or (final_batch_norm is None and recovery):
            x = batch_norm(name="classifier_bn")(x)
        x = tf.keras.layers.Dense(
            num_classes, activation=classifier_activation, name="predictions"
        )(x)
    model = tf.keras.Model(inputs=inputs, outputs=x, name=name)
    if weights is not None:
        load_weights(model, weights)
    return model


def build_zoo_model(
    model_name: str,
    backbone: Callable,
    *,
    multiple: int,
    default_size: int,
    default_classes: int,
    variants: Sequence,
    head,
    act: str,
    names: Tuple[str, str],
    input_shape,
    input_tensor,
    weights,
    include_top: bool,
    num_classes: Optional[int],
    variant,
    recovery: bool,
    classifier_activation: Optional[str],
    flatten: bool = False,
    final_batch_norm: Optional[bool] = None,
) -> tf.keras.Model:
    """What every zoo builder does around its backbone: check the arguments,
    make the input, run ``backbone(inputs)`` (which returns the taps, F last)
    and add the recovery head and classifier.

    ``head`` is the fusion head to build; ``names`` the model's name with
    recovery (the variant letter is appended) and without it.
    """
    check_variant(variant, variants)
    num_classes = check_arguments(
        weights=weights, include_top=include_top, num_classes=num_classes, default_classes=default_classes
    )
    inputs = model_input(input_shape, input_tensor, default_size=default_size, multiple=multiple, model_name=model_name)
    taps = backbone(inputs)
    final = taps.pop()
    suffix = f"_{variant.lower()}" if isinstance(variant, str) else ""
    return build_top(
        inputs,
        taps,
        final,
        name=names[0] + suffix if recovery else names[1],
        recovery=recovery,
        head=head,
        act=act,
        include_top=include_top,
        num_classes=num_classes,
        classifier_activation=classifier_activation,
        flatten=flatten,
        final_batch_norm=final_batch_norm,
        weights=weights,
    )


def load_weights(model: tf.keras.Model, path) -> None:
    """Loads a weights file, with an error that names the file and the model."""
    try:
        model.load_weights(str(path))
    except (ValueError, tf.errors.OpError, OSError) as error:
        raise ValueError(
            f"The weights file {str(path)!r} does not match model {model.name!r}: "
            f"{error}. Build the model with the same name, variant, input size and "
            "num_classes as the run that saved it."
        ) from error


def with_feature_map(model: tf.keras.Model) -> tf.keras.Model:
    """The same model (shared weights) with outputs ``[output, F]``.

    F is the final backbone feature map that information restriction reads.
    """
    try:
        features = model.get_layer(FEATURES_LAYER).output
    except ValueError as error:
        raise ValueError(
            f"Model {model.name!r} has no layer named {FEATURES_LAYER!r}; build it "
            "with ir2net_tf.zoo or ir2net_tf.recovery.add_recovery_head."
        ) from error
    return tf.keras.Model(model.inputs, [model.output, features], name=f"{model.name}_with_features")


