"""The IR-Net models the IR²Net paper (arXiv:2210.02637) compares against,
as in IR-Net's public release (Qin et al., CVPR 2020; docs/irnet.md).

Every 3×3 convolution of the blocks is binary with IR-Net's quantizers
(``binarizer="irnet"``: EDE activations, Libra-PB weights); the first
convolution, the shortcut convolutions and the classifier stay full
precision; Hardtanh activations. No recovery head: the final map F is pooled
(or flattened) into the classifier, with a BatchNorm before it in the ResNets.
"""

from typing import Optional, Sequence

import tensorflow as tf

from ir2net_tf.nn.layers import batch_norm
from ir2net_tf.models.cifar import (
    _add_act,
    _binary_bn,
    _resnet_stages,
    _stem,
    _vgg_small_backbone,
    basic_block,
    resnet20_block,
)
from ir2net_tf.models.common import build_zoo_model
from ir2net_tf.models.spec import ModelSpec, Variant, builder, register
from ir2net_tf.models.resnet_imagenet import WIDTHS, imagenet_stem

IMAGENET_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def irnet_imagenet_block(x, filters, strides, *, conv_args, name):
    """Two binary convs, a shortcut around each:
    h = Hardtanh(BN(bconv1(x)) + downsample(x)); y = Hardtanh(BN(bconv2(h)) + h);
    downsample = full-precision Conv 1×1 (block stride) → BN when the shape changes."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = tf.keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_down_conv")(x)
        shortcut = batch_norm(name=f"{name}_down_bn")(shortcut)
    h = _add_act(_binary_bn(x, filters, strides, conv_args=conv_args, name=f"{name}_1"), shortcut, f"{name}_1")
    return _add_act(_binary_bn(h, filters, 1, conv_args=conv_args, name=f"{name}_2"), h, f"{name}_2")


def _resnet20_backbone(inputs, conv_args):
    x = _stem(inputs, 16)
    return _resnet_stages(x, resnet20_block, (3, 3, 3), (16, 32, 64), conv_args)[-1:]


def _resnet18_cifar_backbone(inputs, conv_args):
    # The release's CIFAR ResNet-18 stem has no activation: conv → BN.
    x = tf.keras.layers.Conv2D(64, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = batch_norm(name="stem_bn")(x)
    return _resnet_stages(x, basic_block, (2, 2, 2, 2), (64, 128, 256, 512), conv_args)[-1:]


def _vgg_backbone(inputs, conv_args):
    return _vgg_small_backbone(inputs, conv_args)[-1:]


def _imagenet_backbone(depth):
    def backbone(inputs, conv_args):
        padding = conv_args["padding"]
        _, x = imagenet_stem(inputs, act="hardtanh", padding=padding)
        stages = _resnet_stages(x, irnet_imagenet_block, IMAGENET_DEPTHS[depth], WIDTHS, conv_args)
        return stages[-1:]

    return backbone


def _irnet_spec(name, summary, architecture, backbone, *, dataset, input_size, stride, num_classes, top1, top5,
                parameters, binary_weights, **fields) -> ModelSpec:
    """The description of an IR-Net model: no recovery head, so one "variant"
    (None) that carries what IR-Net's release reports."""
    return register(ModelSpec(
        name=name, summary=summary, architecture=architecture, backbone=backbone, dataset=dataset,
        input_size=input_size, stride=stride, num_classes=num_classes, activation="hardtanh",
        variants={None: Variant(None, top1, top5, parameters, source="IR-Net release")}, default_variant=None,
        keras_names=(name.replace("IRNet", "irnet_").lower(),) * 2, binary_weights=binary_weights,
        method="irnet", references=_REFERENCES, **fields,
    ))


_REFERENCES = (
    ("IR-Net: Forward and Backward Information Retention for Accurate Binary Neural Networks",
     "https://arxiv.org/abs/1909.10788"),
    ("IR²Net, which compares against it", "https://arxiv.org/abs/2210.02637"),
)

IRNET_RESNET20 = _irnet_spec(
    "IRNetResNet20", "IR-Net's ResNet-20 for CIFAR-10",
    "IR2ResNet20's backbone (stem Conv 3×3/16 → BN → Hardtanh; 3 stages × 3 blocks, a shortcut\n"
    "    around each binary conv, option A when downsampling) → global average pool → BatchNorm → Dense.",
    _resnet20_backbone, dataset="cifar10", input_size=32, stride=4, num_classes=10, top1=86.5, top5=None,
    parameters=269_850, binary_weights=267_264, recipe="irnet_cifar10", final_batch_norm=True,
    paddings=("same", "pytorch"),
)
IRNET_RESNET18_CIFAR = _irnet_spec(
    "IRNetResNet18CIFAR", "IR-Net's ResNet-18 for CIFAR-10",
    "Stem Conv 3×3/64 → BN (no activation); basic blocks [2, 2, 2, 2], widths 64–512,\n"
    "    h = Hardtanh(BN(bconv1(x))), y = Hardtanh(BN(bconv2(h)) + shortcut(x)); global average pool →\n"
    "    BatchNorm → Dense.",
    _resnet18_cifar_backbone, dataset="cifar10", input_size=32, stride=8, num_classes=10, top1=91.5, top5=None,
    parameters=11_174_986, binary_weights=10_985_472, recipe="irnet_cifar10", final_batch_norm=True,
    paddings=("same", "pytorch"),
)
IRNET_VGG_SMALL = _irnet_spec(
    "IRNetVGGSmall", "IR-Net's VGG-Small for CIFAR-10",
    "IR2VGGSmall without the recovery head: conv0 (128) → BN → Hardtanh, five binary convs (max pool\n"
    "    after the 1st, 3rd and 5th) → flatten (8192) → Dense.",
    _vgg_backbone, dataset="cifar10", input_size=32, stride=8, num_classes=10, top1=90.4, top5=None,
    parameters=4_660_106, binary_weights=4_571_136, recipe="irnet_cifar10", flatten=True, final_batch_norm=False,
    paddings=("same", "pytorch"),
)
IRNET_RESNET18 = _irnet_spec(
    "IRNetResNet18", "IR-Net's ResNet-18 for ImageNet",
    "Stem Conv 7×7/2 → BN → Hardtanh → MaxPool 3×3/2; [2, 2, 2, 2] blocks of two binary convs with a\n"
    "    shortcut around each (Conv 1×1/2 → BN when downsampling); global average pool → BatchNorm → Dense.\n"
    "    (The release also declares an unused BatchNorm1d(1000), not built here.)",
    _imagenet_backbone(18), dataset="imagenet2012", input_size=224, stride=32, num_classes=1000, top1=58.1,
    top5=80.0, parameters=11_690_536, binary_weights=10_985_472, recipe="irnet_imagenet", final_batch_norm=True,
    depths=IMAGENET_DEPTHS[18], paddings=("same", "pytorch"),
)
IRNET_RESNET34 = _irnet_spec(
    "IRNetResNet34", "IR-Net's ResNet-34 for ImageNet",
    "IRNetResNet18 with [3, 4, 6, 3] blocks.",
    _imagenet_backbone(34), dataset="imagenet2012", input_size=224, stride=32, num_classes=1000, top1=62.9,
    top5=84.1, parameters=21_798_696, binary_weights=21_086_208, recipe="irnet_imagenet", final_batch_norm=True,
    depths=IMAGENET_DEPTHS[34], paddings=("same", "pytorch"),
)

@builder(IRNET_RESNET20)
def IRNetResNet20(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = False,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return build_zoo_model(IRNET_RESNET20, **locals())


@builder(IRNET_RESNET18_CIFAR)
def IRNetResNet18CIFAR(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = False,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return build_zoo_model(IRNET_RESNET18_CIFAR, **locals())


@builder(IRNET_VGG_SMALL)
def IRNetVGGSmall(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = False,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return build_zoo_model(IRNET_VGG_SMALL, **locals())


@builder(IRNET_RESNET18)
def IRNetResNet18(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = False,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return build_zoo_model(IRNET_RESNET18, **locals())


@builder(IRNET_RESNET34)
def IRNetResNet34(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    input_tensor=None,
    weights: Optional[str] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    variant=None,
    recovery: bool = False,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    classifier_activation: Optional[str] = "softmax",
    padding: str = "same",
    weight_clip: bool = False,
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return build_zoo_model(IRNET_RESNET34, **locals())
