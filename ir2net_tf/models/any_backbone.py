"""IR² information recovery for any Keras binary network."""

from typing import Optional, Sequence, Union

import tensorflow as tf

from ir2net_tf.models.common import Top, build_top
from ir2net_tf.nn.recovery import resolve_head


def _layer_output(model: tf.keras.Model, name: str):
    try:
        layer = model.get_layer(name)
    except ValueError:
        spatial = [l.name for l in model.layers if len(getattr(l, "output_shape", ()) or ()) == 4]
        raise ValueError(
            f"Model {model.name!r} has no layer named {name!r}. Layers with 4-D "
            f"outputs you could tap: {spatial[:12]}{' …' if len(spatial) > 12 else ''} "
            "(model.summary() lists them all)."
        ) from None
    output = layer.output
    if output.shape.rank != 4:
        raise ValueError(
            f"Layer {name!r} outputs shape {output.shape}; taps and the final map "
            "must be 4-D feature maps (N, H, W, C)."
        )
    return output


def _spatial_layers(model: tf.keras.Model):
    """(layer, height) of every single-output layer with a 4-D static output."""
    found = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue  # the image itself is not a feature map to recover
        shape = getattr(layer.output, "shape", None)
        if shape is not None and shape.rank == 4 and shape[1] is not None:
            found.append((layer, shape[1]))
    return found


def last_feature_map_layer(model: tf.keras.Model) -> str:
    """The last layer (in graph order) whose output is a 4-D map larger than 1×1:
    the input of the model's global pooling."""
    for layer, height in reversed(_spatial_layers(model)):
        if height > 1:
            return layer.name
    raise ValueError(f"Model {model.name!r} has no layer with a 4-D output larger than 1x1.")


def auto_tap_layers(model: tf.keras.Model, final_layer: str) -> list:
    """For each feature-map size larger than F's that F's size divides, the last
    layer of that size: the output of each stage (and of the stem)."""
    final_size = model.get_layer(final_layer).output.shape[1]
    last_of_size = {}
    for layer, height in _spatial_layers(model):
        if height > final_size and height % final_size == 0:
            last_of_size[height] = layer.name
    return [last_of_size[h] for h in sorted(last_of_size, reverse=True)]


def add_recovery_head(
    model: tf.keras.Model,
    tap_layers: Union[Sequence[str], str] = "auto",
    *,
    final_layer: Optional[str] = None,
    head="A",
    activation: str = "prelu",
    out_channels: Optional[int] = None,
    include_top: bool = True,
    num_classes: int = 1000,
    classifier_activation: Optional[str] = "softmax",
    name: Optional[str] = None,
) -> tf.keras.Model:
    """Returns ``model`` with an IR² information-recovery head.

    The outputs of ``tap_layers`` are average-pooled to the size of the final
    feature map (the output of ``final_layer``), concatenated with it, fused by
    ``head`` and classified by global pooling → BatchNorm → Dense, as in
    IR2ResNet18. Everything after ``final_layer`` in ``model`` (its own pooling
    and classifier) is dropped.

    The new model reuses ``model``'s layers, so it shares their weights: build
    it from a trained backbone (e.g. larq-zoo's ``BiRealNet(weights="imagenet")``)
    to fine-tune with recovery. Its layer ``"final_features"`` is F, so
    ``ir2net_tf.zoo.with_feature_map`` and IR² training work on it.

    Args:
        model: a functional Keras model (any BNN; larq-zoo's models work).
        tap_layers: names of the layers whose outputs are the shallow taps
            (f0, f1, …); their sizes must be multiples of the final map's.
            ``"auto"`` (default) takes, for each feature-map size larger than
            F's, the last layer of that size: the stem and stage outputs of a
            ResNet-like network (for Bi-Real Net exactly IR2ResNet18's taps).
        final_layer: name of the layer producing F; default the last layer
            with a 4-D output.
        head: fusion head: ``"A"``–``"D"`` (any case) or an ``ir2net_tf.nn.recovery.FusionHead``.
        activation: ``"prelu"`` or ``"hardtanh"`` in the head.
        out_channels: channels of the fused map (default: F's channels).
        include_top, num_classes, classifier_activation: as in the zoo builders.
        name: the new model's name (default ``"<model.name>_ir2"``).

    Example (larq-zoo's Bi-Real Net with variant B's head):

    ```python
    bireal = larq_zoo.literature.BiRealNet(weights="imagenet")
    ir2 = add_recovery_head(bireal, head="B")  # taps found automatically
    ```
    """
    if any(layer.name.startswith("recovery_") for layer in model.layers):
        raise ValueError(
            f"Model {model.name!r} already has a recovery head (its 'recovery_*' layers); add the head to the "
            "bare backbone (e.g. a zoo model built with recovery=False) instead."
        )
    final_layer = final_layer or last_feature_map_layer(model)
    if tap_layers == "auto":
        tap_layers = auto_tap_layers(model, final_layer)
    if not tap_layers:
        raise ValueError(
            "No tap layers: name at least one layer to recover from (its feature-map "
            "size must be a multiple of the final map's)."
        )
    taps = [_layer_output(model, tap) for tap in tap_layers]
    final = _layer_output(model, final_layer)
    if include_top and int(num_classes) < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes}.")
    return build_top(
        model.inputs,
        taps,
        final,
        name=name or f"{model.name}_ir2",
        head=resolve_head(head),
        act=activation,
        top=Top(include_top, int(num_classes), classifier_activation),
        out_channels=out_channels,
    )
