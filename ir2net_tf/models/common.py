"""What every zoo builder shares: argument checks, the input, the recovery head
and classifier on top of a backbone, weight loading, and access to F. The
facts of each model come from its ``ModelSpec`` (``ir2net_tf.models.spec``)."""

import dataclasses
from typing import Optional, Sequence, Union

import tensorflow as tf

from ir2net_tf.nn.layers import batch_norm, classifier_pool
from ir2net_tf.nn.recovery import FusionHead, recover

# An identity layer whose output is the final backbone feature map F: what
# restriction reads. Found by name, so it survives saving and loading.
FEATURES_LAYER = "final_features"


def model_input(input_shape: Optional[Sequence[Optional[int]]], input_tensor, *, default_size: int,
                include_top: bool):
    """The input layer. ``input_shape`` was checked by the model's
    ``ModelSpec.check_arguments``; None gives ``(default_size, default_size,
    3)``, or ``(None, None, 3)`` without the classifier (a fully
    convolutional feature extractor, as keras.applications)."""
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise ValueError(
                f"input_shape {tuple(input_shape)} disagrees with input_tensor's "
                f"shape {shape}; pass one of them."
            )
    elif input_shape is not None:
        shape = tuple(input_shape)
    else:
        shape = (default_size, default_size, 3) if include_top else (None, None, 3)
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
        elif None in x.shape[1:3]:  # a dynamic size: the pool's window is known only when it runs
            x = tf.keras.layers.GlobalAveragePooling2D(name="classifier_pool")(x)
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
    spec.check_arguments(dict(input_shape=input_shape, weights=weights, include_top=include_top,
                              num_classes=num_classes, recovery=recovery,
                              classifier_activation=classifier_activation, **conv_args))
    head = resolve_variant(spec, variant)
    if recovery and head is None:
        raise ValueError(
            f"{spec.name} has no recovery head (recovery=False); for its binarization with information "
            "recovery, build an IR² model with binarizer='irnet' (e.g. IR2ResNet20(binarizer='irnet'))."
        )
    top = Top(include_top, spec.num_classes if num_classes is None else int(num_classes), classifier_activation)
    inputs = model_input(input_shape, input_tensor, default_size=spec.input_size, include_top=include_top)
    if input_tensor is not None:  # its shape was not seen by check_arguments
        spec.check_arguments(dict(input_shape=tuple(inputs.shape[1:]), weights=weights, include_top=include_top,
                                  recovery=recovery))
    pretrained = weights is not None and str(weights) == "imagenet" and spec.pretrained
    if pretrained:  # the backbone's own weights (larq-zoo's download and cache)
        taps = spec.backbone(inputs, conv_args, weights="imagenet")
    else:
        taps = spec.backbone(inputs, conv_args)
    final = taps.pop()
    with_head, bare = spec.keras_names
    suffix = f"_{spec.parse_variant(variant).lower()}" if isinstance(variant, str) and spec.has_recovery else ""
    model = build_top(
        inputs, taps, final, name=with_head + suffix if recovery else bare, head=head if recovery else None,
        act=spec.activation, top=top, flatten=spec.flatten, final_batch_norm=spec.final_batch_norm,
    )
    if weights is not None and not pretrained:
        load_weights(model, weights)
    return model


def load_weights(model: tf.keras.Model, path) -> None:
    """Loads a weights file, all of it or nothing (``ir2net_tf.models.weights``): a
    file that does not fit the model is a ValueError naming what differs."""
    from ir2net_tf.models.weights import load_weights as load_all_or_nothing

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
    if isinstance(model.output, (list, tuple)):
        if len(model.outputs) == 2 and model.outputs[1] is features:
            return model  # already [output, F]: applying it twice changes nothing
        raise ValueError(f"Model {model.name!r} has {len(model.outputs)} outputs; with_feature_map takes a "
                         "model with one output (the logits or probabilities).")
    return tf.keras.Model(model.inputs, [model.output, features], name=f"{model.name}_with_features")


