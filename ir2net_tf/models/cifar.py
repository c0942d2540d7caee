"""The CIFAR-10 models (SPEC: "CIFAR-10"): IR2ResNet20, IR2ResNet18CIFAR and
IR2VGGSmall, all with Hardtanh activations and 32×32 inputs by default."""

from typing import Optional, Sequence

import tensorflow as tf

from ir2net_tf.layers import SubsampleZeroPadShortcut, activation, batch_norm, binary_conv
from ir2net_tf.models.common import build_zoo_model
from ir2net_tf.recovery import VARIANTS, FusionHead

# The head each CIFAR model has in the paper; "A"–"D" (the ImageNet variants)
# may be passed instead for experiments.
PAPER_HEADS = {
    "IR2ResNet20": FusionHead("compact", ratio=4, cheap_groups="depthwise"),
    "IR2ResNet18CIFAR": FusionHead("compact", ratio=20, cheap_groups="depthwise"),
    "IR2VGGSmall": FusionHead("compact", ratio=32, cheap_groups="depthwise"),
}
CIFAR_VARIANTS = (None, *VARIANTS)


def _stem(inputs, filters: int):
    x = tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = batch_norm(name="stem_bn")(x)
    return activation("hardtanh", name="stem_act")(x)


def _binary_bn(x, filters, strides, *, conv_args, name):
    """bconv → BN, the unit every CIFAR block is made of."""
    x = binary_conv(filters, strides=strides, name=f"{name}_bconv", **conv_args)(x)
    return batch_norm(name=f"{name}_bn")(x)


def _add_act(a, b, name):
    x = tf.keras.layers.Add(name=f"{name}_add")([a, b])
    return activation("hardtanh", name=f"{name}_act")(x)


def resnet20_block(x, filters, strides, *, conv_args, name):
    """Two binary convs, each with a shortcut around it:
    h = Hardtanh(BN(bconv1(x)) + shortcut(x)); y = Hardtanh(BN(bconv2(h)) + h).
    The downsampling shortcut is option A (subsample, zero-pad channels)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = SubsampleZeroPadShortcut(filters, name=f"{name}_shortcut")(x)
    h = _add_act(_binary_bn(x, filters, strides, conv_args=conv_args, name=f"{name}_1"), shortcut, f"{name}_1")
    return _add_act(_binary_bn(h, filters, 1, conv_args=conv_args, name=f"{name}_2"), h, f"{name}_2")


def basic_block(x, filters, strides, *, conv_args, name):
    """h = Hardtanh(BN(bconv1(x))); y = Hardtanh(BN(bconv2(h)) + shortcut(x)),
    shortcut = full-precision Conv 1×1 (block stride) → BN when the shape changes."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = tf.keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_down_conv")(x)
        shortcut = batch_norm(name=f"{name}_down_bn")(shortcut)
    h = _binary_bn(x, filters, strides, conv_args=conv_args, name=f"{name}_1")
    h = activation("hardtanh", name=f"{name}_1_act")(h)
    return _add_act(_binary_bn(h, filters, 1, conv_args=conv_args, name=f"{name}_2"), shortcut, f"{name}_2")


def _resnet_stages(x, block, depths, widths, conv_args):
    """Stages of ``block``; the first block of every stage but the first has
    stride 2. Returns the stage outputs."""
    outputs = []
    for stage, (blocks, width) in enumerate(zip(depths, widths), start=1):
        for index in range(blocks):
            strides = 2 if stage > 1 and index == 0 else 1
            x = block(x, width, strides, conv_args=conv_args, name=f"stage{stage}_block{index + 1}")
        outputs.append(x)
    return outputs


def _build(model_name, backbone, *, multiple, binary_weights, pad_values, variant, binarizer="bireal", **arguments):
    conv_args = {"binary_weights": binary_weights, "pad_values": pad_values, "binarizer": binarizer}
    return build_zoo_model(
        model_name,
        lambda inputs: backbone(inputs, conv_args),
        multiple=multiple,
        default_size=32,
        default_classes=10,
        variants=CIFAR_VARIANTS,
        head=PAPER_HEADS[model_name] if variant is None else variant,
        act="hardtanh",
        names=(model_name.replace("IR2", "ir2_").lower(), model_name.replace("IR2", "binary_").lower()),
        variant=variant,
        **arguments,
    )


def _resnet20_backbone(inputs, conv_args):
    x = _stem(inputs, 16)
    return [x, *_resnet_stages(x, resnet20_block, (3, 3, 3), (16, 32, 64), conv_args)]


def _resnet18_backbone(inputs, conv_args):
    x = _stem(inputs, 64)
    return [x, *_resnet_stages(x, basic_block, (2, 2, 2, 2), (64, 128, 256, 512), conv_args)]


# (output channels, max pool after the conv) of VGG-Small's binary convolutions.
VGG_SMALL_CONVS = ((128, True), (256, False), (256, True), (512, False), (512, True))


def _vgg_small_backbone(inputs, conv_args):
    x = _stem(inputs, 128)
    f0 = x
    for index, (filters, pool) in enumerate(VGG_SMALL_CONVS, start=1):
        name = f"conv{index}"
        x = binary_conv(filters, name=f"{name}_bconv", **conv_args)(x)
        if pool:
            x = tf.keras.layers.MaxPool2D(2, name=f"{name}_pool")(x)
        x = batch_norm(name=f"{name}_bn")(x)
        x = activation("hardtanh", name=f"{name}_act")(x)
    return [f0, x]


_ARGS_DOC = """
    # Arguments
        input_shape: ``(height, width, 3)``; default ``(32, 32, 3)``. Height and
            width must be multiples of the model's total stride.
        input_tensor: optional Keras tensor to use as the image input.
        weights: ``None`` or the path to a weights file of the same architecture.
        include_top: whether to add the classifier. Without it the model returns
            the fused map (or F when ``recovery=False``).
        num_classes: classes (default 10); only with ``include_top=True``.
        variant: ``None`` (default) is the paper's head for this model; the
            ImageNet variants ``"A"``–``"D"`` or a ``FusionHead`` may be tried.
        recovery: ``False`` builds the bare backbone (F → pool → Dense) as the
            ablation baseline.
        binary_weights: ``False`` for real weights with binary activations.
        pad_values: 0.0 (the reference, default) or 1.0 (LCE one-padding).
        binarizer: ``"bireal"`` (default: IR²Net's approx_sign/ste_sign) or
            ``"irnet"`` (IR-Net's EDE and Libra-PB, docs/irnet.md).
        classifier_activation: ``"softmax"`` (default, probabilities) or ``None``
            (logits), as in ``keras.applications``.

    # Input
        Images normalized with the ImageNet mean and std (SPEC's CIFAR recipe).

    # Returns
        A functional ``tf.keras.Model`` whose layer ``"final_features"`` is F.
"""


def IR2ResNet20(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = True,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return _build("IR2ResNet20", _resnet20_backbone, multiple=4, **locals())


def IR2ResNet18CIFAR(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = True,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return _build("IR2ResNet18CIFAR", _resnet18_backbone, multiple=8, **locals())


def IR2VGGSmall(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = True,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return _build("IR2VGGSmall", _vgg_small_backbone, multiple=8, flatten=True, final_batch_norm=False, **locals())


IR2ResNet20.__doc__ = (
    """Instantiates IR2ResNet20 for CIFAR-10 (32×32, 10 classes).

    Stem Conv 3×3/16; 3 stages × 3 blocks (16, 32, 64), two binary convs per
    block with a shortcut around each (option A when downsampling). Taps f0
    (stem), f1, f2 pooled to 8×8 with F: 128 channels → CIRec(128 → 64, r=4,
    depthwise) → global average pool → BatchNorm → Dense.

    | Top-1 (paper) | trainable parameters | binary convolutions |
    | ------------- | -------------------- | ------------------- |
    | 87.2 %        | 272,458              | 18                  |
"""
    + _ARGS_DOC
)

IR2ResNet18CIFAR.__doc__ = (
    """Instantiates IR2ResNet18 for CIFAR-10 (32×32, 10 classes).

    Stem Conv 3×3/64; basic blocks [2, 2, 2, 2], widths 64–512. Taps f0–f3
    pooled to 4×4 with F: 1024 channels → CIRec(1024 → 512, r=20, depthwise)
    → global average pool → BatchNorm → Dense.

    | Top-1 (paper) | trainable parameters | binary convolutions |
    | ------------- | -------------------- | ------------------- |
    | 92.5 %        | 11,207,096           | 16                  |
"""
    + _ARGS_DOC
)

IR2VGGSmall.__doc__ = (
    """Instantiates IR2VGGSmall for CIFAR-10 (32×32, 10 classes).

    Full-precision conv0 (128) then five binary 3×3 convs (128, 256, 256, 512,
    512; max pool after the 1st, 3rd and 5th), each bconv → [pool] → BN →
    Hardtanh. f0 (conv0) pooled to 4×4 with F: 640 channels →
    CIRec(640 → 512, r=32, depthwise) → flatten (8192) → Dense; no final
    BatchNorm.

    | Top-1 (paper) | trainable parameters | binary convolutions |
    | ------------- | -------------------- | ------------------- |
    | 91.5 %        | 4,675,834            | 5                   |
"""
    + _ARGS_DOC
)
