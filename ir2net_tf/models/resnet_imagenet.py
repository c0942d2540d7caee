"""IR2ResNet18 and IR2ResNet34: Bi-Real Net backbones with information recovery
(docs/architectures.md, "ImageNet")."""

import functools
from typing import Optional, Sequence

import tensorflow as tf

from ir2net_tf.nn.layers import PyTorchPadding2D, activation, batch_norm, binary_conv
from ir2net_tf.models.common import build_zoo_model
from ir2net_tf.models.spec import ModelSpec, Variant, builder, register
from ir2net_tf.nn.recovery import VARIANTS

WIDTHS = (64, 128, 256, 512)
DEPTHS_18 = (4, 4, 4, 4)
DEPTHS_34 = (6, 8, 12, 6)


def bireal_block(x, filters: int, strides: int, *, name: str, **conv_args):
    """y = PReLU(BN(bconv(x)) + shortcut(x)); the shortcut is AvgPool 2×2/2 →
    full-precision Conv 1×1 → BN when the stride or width changes.
    ``conv_args`` are ``binary_conv``'s options."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = tf.keras.layers.AveragePooling2D(strides, strides=strides, name=f"{name}_down_pool")(x)
        shortcut = tf.keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_down_conv")(shortcut)
        shortcut = batch_norm(name=f"{name}_down_bn")(shortcut)
    y = binary_conv(filters, strides=strides, name=f"{name}_bconv", **conv_args)(x)
    y = batch_norm(name=f"{name}_bn")(y)
    y = tf.keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return activation("prelu", name=f"{name}_act")(y)


def imagenet_stem(inputs, *, act: str, padding: str):
    """Conv 7×7/2, 64 → BN → ``act``, then MaxPool 3×3/2.

    Returns:
        (the stem's output before the max pool, the max pool's output).
    """
    if padding == "pytorch":
        # PyTorch's Conv2d(7, 2, padding=3): zeros, then "valid".
        x = PyTorchPadding2D(7, 2, name="stem_pad")(inputs)
        x = tf.keras.layers.Conv2D(64, 7, strides=2, use_bias=False, name="stem_conv")(x)
    else:
        x = tf.keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = batch_norm(name="stem_bn")(x)
    stem = activation(act, name="stem_act")(x)
    if padding == "pytorch":
        # PyTorch's MaxPool2d(3, 2, padding=1) never picks a padded pixel: pad
        # with the lowest float (PReLU outputs can be negative), then "valid".
        x = PyTorchPadding2D(3, 2, value="lowest", name="stem_pool_pad")(stem)
        return stem, tf.keras.layers.MaxPool2D(3, strides=2, name="stem_pool")(x)
    return stem, tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(stem)


def bireal_backbone(inputs, conv_args, *, depths):
    """Stem and Bi-Real stages; returns the taps f0 (stem, before the max
    pool), f1–f3 and F (the last stage's output)."""
    stem, x = imagenet_stem(inputs, act="prelu", padding=conv_args.get("padding", "same"))
    taps = [stem]
    for stage, (blocks, width) in enumerate(zip(depths, WIDTHS), start=1):
        for block in range(blocks):
            strides = 2 if stage > 1 and block == 0 else 1
            x = bireal_block(x, width, strides, name=f"stage{stage}_block{block + 1}", **conv_args)
        taps.append(x)
    return taps


_ARCHITECTURE = (
    "Taps f0 (stem, before the max pool), f1–f3 (stages 1–3) are average-pooled to 7×7 and\n"
    "    concatenated with F (stage 4, 7×7×512): 1024 channels → fusion head → 512 → global\n"
    "    average pool → BatchNorm → Dense."
)
_BIREAL = ("Bi-Real Net", "https://arxiv.org/abs/1808.00278")

IR2_RESNET18 = register(ModelSpec(
    name="IR2ResNet18",
    summary="a Bi-Real Net-18 backbone ([4, 4, 4, 4] blocks) with information recovery",
    architecture=_ARCHITECTURE,
    backbone=functools.partial(bireal_backbone, depths=DEPTHS_18),
    dataset="imagenet2012", input_size=224, stride=32, num_classes=1000, activation="prelu",
    variants={
        "A": Variant(VARIANTS["A"], 68.2, 88.0, 12_220_264),
        "B": Variant(VARIANTS["B"], 67.0, 87.1, 11_960_424),
        "C": Variant(VARIANTS["C"], 66.6, 87.0, 11_882_344),
        "D": Variant(VARIANTS["D"], 63.8, 85.5, 11_727_070),
    },
    default_variant="A", keras_names=("ir2_resnet18", "bireal_resnet18"), recipe="imagenet",
    binary_weights=10_985_472, depths=DEPTHS_18, paddings=("same", "pytorch"),
    references=(ModelSpec.references[0], _BIREAL),
))

IR2_RESNET34 = register(ModelSpec(
    name="IR2ResNet34",
    summary="a Bi-Real Net-34 backbone ([6, 8, 12, 6] blocks) with information recovery",
    architecture=_ARCHITECTURE,
    backbone=functools.partial(bireal_backbone, depths=DEPTHS_34),
    dataset="imagenet2012", input_size=224, stride=32, num_classes=1000, activation="prelu",
    variants={
        "A": Variant(VARIANTS["A"], parameters=22_332_136),
        "B": Variant(VARIANTS["B"], parameters=22_072_296),
        "C": Variant(VARIANTS["C"], parameters=21_994_216),
        "D": Variant(VARIANTS["D"], parameters=21_838_942),
    },
    default_variant="A", keras_names=("ir2_resnet34", "bireal_resnet34"), recipe="imagenet",
    binary_weights=21_086_208, depths=DEPTHS_34, paddings=("same", "pytorch"),
    references=(ModelSpec.references[0], _BIREAL),
))


@builder(IR2_RESNET18)
def IR2ResNet18(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant="A",
    recovery: bool = True,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return build_zoo_model(IR2_RESNET18, **locals())


@builder(IR2_RESNET34)
def IR2ResNet34(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant="A",
    recovery: bool = True,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return build_zoo_model(IR2_RESNET34, **locals())
