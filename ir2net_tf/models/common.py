"""What every zoo builder shares: argument checks, the input, the recovery head
and classifier on top of a backbone, weight loading, and access to F. The
facts of each model come from its ``ModelSpec`` (``ir2net_tf.models.spec``)."""

import dataclasses
import os
from typing import Optional, Sequence, Union

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


# The builders' options that configure the binary convolutions; the rest
# (input, weights, classifier, variant, recovery) shape the model around them.
CONV_OPTIONS = ("binary_weights", "pad_values", "padding", "weight_clip", "binarizer")


def resolve_variant(spec, variant) -> Union[FusionHead, str]:
    """The head to build for ``variant``: a ``FusionHead`` passes through; a
    name (any case; None for the default) is looked up in ``spec.variants``."""
    if isinstance(variant, FusionHead):
        return variant
    return spec.variant(variant).head


def build_top(
    inputs,
    taps: Sequence[tf.Tensor],
    final,
    *,
    name: str,
    head: Optional[FusionHead],
    act: str,
    top: "Top",
    flatten: bool = False,
    final_batch_norm: Optional[bool] = None,
    out_channels: Optional[int] = None,
) -> tf.keras.Model:
    """The recovery head (unless ``head`` is None) and classifier on top of a
    backbone's taps and final map F.

    ``flatten`` selects Flatten instead of global average pooling before the
    classifier (VGG-Small); ``final_batch_norm`` the BatchNorm before the
    Dense layer: None adds it with a recovery head only (the recovery models
    have it, their bare backbones do not), True or False always or never.
    """
    if final._keras_history.layer.name != FEATURES_LAYER:  # a zoo model's F is already marked
        final = tf.keras.layers.Activation("linear", name=FEATURES_LAYER)(final)
    x = final
    if head is not None:
        x = recover(taps, final, out_channels=out_channels, head=head, act=act)
    if top.include_top:
        if flatten:
            x = tf.keras.layers.Flatten(name="classifier_flatten")(x)
        else:
            x = classifier_pool(x, name="classifier")
        if final_batch_norm or (final_batch_norm is None and head is not None):
            x = batch_norm(name="classifier_bn")(x)
        x = tf.keras.layers.Dense(top.num_classes, activation=top.classifier_activation, name="predictions")(x)
    return tf.keras.Model(inputs=inputs, outputs=x, name=name)


@dataclasses.dataclass(frozen=True)
class Top:
    """The classifier a builder was asked for."""

    include_top: bool = True
    num_classes: int = 1000
    classifier_activation: Optional[str] = "softmax"


def build_zoo_model(
    spec,
    *,
    input_shape,
    input_tensor,
    weights,
    include_top: bool,
    num_classes: Optional[int],
    variant,
    recovery: bool,
    classifier_activation: Optional[str],
    **conv_args,
) -> tf.keras.Model:
    """What every zoo builder does: check the arguments against ``spec``
    (an ``ir2net_tf.models.spec.ModelSpec``), make the input, build the
    backbone with the binary-convolution options ``conv_args``
    (``CONV_OPTIONS``), add the recovery head and classifier, load weights.
    """
    head = resolve_variant(spec, variant)
    if recovery and head is None:
        raise ValueError(
            f"{spec.name} has no recovery head (recovery=False); for its binarization with information "
            "recovery, build an IR² model with binarizer='irnet' (e.g. IR2ResNet20(binarizer='irnet'))."
        )
    padding = conv_args.get("padding", "same")
    if padding not in spec.paddings:
        raise ValueError(
            f"{spec.name} supports padding {' or '.join(map(repr, spec.paddings))}; got {padding!r}."
        )
    top = Top(
        include_top,
        check_arguments(weights=weights, include_top=include_top, num_classes=num_classes,
                        default_classes=spec.num_classes),
        classifier_activation,
    )
    inputs = model_input(input_shape, input_tensor, default_size=spec.input_size, multiple=spec.stride,
                         model_name=spec.name)
    taps = spec.backbone(inputs, conv_args)
    final = taps.pop()
    with_head, bare = spec.keras_names
    suffix = f"_{spec.parse_variant(variant).lower()}" if isinstance(variant, str) and spec.has_recovery else ""
    model = build_top(
        inputs, taps, final, name=with_head + suffix if recovery else bare, head=head if recovery else None,
        act=spec.activation, top=top, flatten=spec.flatten, final_batch_norm=spec.final_batch_norm,
    )
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: tf.keras.Model, path) -> None:
    """Loads a weights file, all of it or nothing (``ir2net_tf.weights``): a
    file that does not fit the model is a ValueError naming what differs."""
    from ir2net_tf.weights import load_weights as load_all_or_nothing

    load_all_or_nothing(model, path)


def with_feature_map(model: tf.keras.Model) -> tf.keras.Model:
    """The same model (shared weights) with outputs ``[output, F]``.

    F is the final backbone feature map that information restriction reads.
    """
    try:
        features = model.get_layer(FEATURES_LAYER).output
    except ValueError as error:
        raise ValueError(
            f"Model {model.name!r} has no layer named {FEATURES_LAYER!r}; build it "
            "with ir2net_tf.zoo, or add a recovery head with ir2net_tf.zoo.add_recovery_head."
        ) from error
    return tf.keras.Model(model.inputs, [model.output, features], name=f"{model.name}_with_features")


