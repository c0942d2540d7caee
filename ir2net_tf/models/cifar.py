"""The CIFAR-10 models (docs/architectures.md, "CIFAR-10"): IR2ResNet20,
IR2ResNet18CIFAR and IR2VGGSmall, all with Hardtanh activations and 32×32
inputs by default."""

from typing import Optional, Sequence

import tensorflow as tf

from ir2net_tf.nn.layers import SubsampleZeroPadShortcut, activation, batch_norm, binary_conv
from ir2net_tf.models.common import build_zoo_model
from ir2net_tf.models.spec import ModelSpec, Variant, builder, register
from ir2net_tf.nn.recovery import VARIANTS, FusionHead


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


def _variants(paper_head: FusionHead, paper_top1: float, parameters: int):
    """The paper's head for this model, then the ImageNet heads A–D to try."""
    return {"paper": Variant(paper_head, paper_top1, parameters=parameters),
            **{name: Variant(head) for name, head in VARIANTS.items()}}


IR2_RESNET20 = register(ModelSpec(
    name="IR2ResNet20",
    summary="a binary ResNet-20 for CIFAR-10 with information recovery",
    architecture=(
        "Stem Conv 3×3/16; 3 stages × 3 blocks (16, 32, 64), two binary convs per block with a\n"
        "    shortcut around each (option A when downsampling). Taps f0 (stem), f1, f2 pooled to 8×8\n"
        "    with F: 128 channels → CIRec(128 → 64, r=4, depthwise) → global average pool →\n"
        "    BatchNorm → Dense."
    ),
    backbone=_resnet20_backbone,
    dataset="cifar10", input_size=32, stride=4, num_classes=10, activation="hardtanh",
    variants=_variants(FusionHead("compact", ratio=4, cheap_groups="depthwise"), 87.2, 272_458),
    default_variant="paper", keras_names=("ir2_resnet20", "binary_resnet20"), recipe="cifar10_resnet20",
    binary_weights=267_264, paddings=("same", "pytorch"),
))

IR2_RESNET18_CIFAR = register(ModelSpec(
    name="IR2ResNet18CIFAR",
    summary="a binary ResNet-18 for CIFAR-10 with information recovery",
    architecture=(
        "Stem Conv 3×3/64; basic blocks [2, 2, 2, 2], widths 64–512. Taps f0–f3 pooled to 4×4\n"
        "    with F: 1024 channels → CIRec(1024 → 512, r=20, depthwise) → global average pool →\n"
        "    BatchNorm → Dense."
    ),
    backbone=_resnet18_backbone,
    dataset="cifar10", input_size=32, stride=8, num_classes=10, activation="hardtanh",
    variants=_variants(FusionHead("compact", ratio=20, cheap_groups="depthwise"), 92.5, 11_207_096),
    default_variant="paper", keras_names=("ir2_resnet18cifar", "binary_resnet18cifar"), recipe="cifar10_resnet18",
    binary_weights=10_985_472, paddings=("same", "pytorch"),
))

IR2_VGG_SMALL = register(ModelSpec(
    name="IR2VGGSmall",
    summary="a binary VGG-Small for CIFAR-10 with information recovery",
    architecture=(
        "Full-precision conv0 (128) then five binary 3×3 convs (128, 256, 256, 512, 512; max pool\n"
        "    after the 1st, 3rd and 5th), each bconv → [pool] → BN → Hardtanh. f0 (conv0) pooled to\n"
        "    4×4 with F: 640 channels → CIRec(640 → 512, r=32, depthwise) → flatten (8192) → Dense;\n"
        "    no final BatchNorm."
    ),
    backbone=_vgg_small_backbone,
    dataset="cifar10", input_size=32, stride=8, num_classes=10, activation="hardtanh",
    variants=_variants(FusionHead("compact", ratio=32, cheap_groups="depthwise"), 91.5, 4_675_834),
    default_variant="paper", keras_names=("ir2_vggsmall", "binary_vggsmall"), recipe="cifar10_vggsmall",
    binary_weights=4_571_136, paddings=("same", "pytorch"), flatten=True, final_batch_norm=False,
))


@builder(IR2_RESNET20)
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
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return build_zoo_model(IR2_RESNET20, **locals())


@builder(IR2_RESNET18_CIFAR)
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
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return build_zoo_model(IR2_RESNET18_CIFAR, **locals())


@builder(IR2_VGG_SMALL)
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
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return build_zoo_model(IR2_VGG_SMALL, **locals())
