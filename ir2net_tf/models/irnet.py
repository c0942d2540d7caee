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

from ir2net_tf.layers import batch_norm, check_padding
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


def _build(
    model_name, backbone, *, multiple, default_size=32, default_classes=10, binary_weights, pad_values, binarizer,
    variant, recovery, padding=None, **arguments,
):
    if variant is not None:
        raise ValueError(f"{model_name} has no variants (IR-Net has no recovery head); leave variant=None.")
    if recovery:
        raise ValueError(
            f"{model_name} is IR-Net without information recovery; for IR-Net's binarization with a "
            "recovery head build an IR² model with binarizer='irnet' (e.g. IR2ResNet20(binarizer='irnet'))."
        )
    conv_args = {"binary_weights": binary_weights, "pad_values": pad_values, "binarizer": binarizer}
    if padding is not None:
        conv_args["padding"] = check_padding(padding)
    name = model_name.replace("IRNet", "irnet_").lower()
    return build_zoo_model(
        model_name,
        lambda inputs: backbone(inputs, conv_args),
        multiple=multiple,
        default_size=default_size,
        default_classes=default_classes,
        variants=(None,),
        head=None,
        act="hardtanh",
        names=(name, name),
        variant=None,
        recovery=False,
        **arguments,
    )


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
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return _build("IRNetResNet20", _resnet20_backbone, multiple=4, final_batch_norm=True, **locals())


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
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return _build("IRNetResNet18CIFAR", _resnet18_cifar_backbone, multiple=8, final_batch_norm=True, **locals())


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
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return _build("IRNetVGGSmall", _vgg_backbone, multiple=8, flatten=True, final_batch_norm=False, **locals())


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
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return _build(
        "IRNetResNet18", _imagenet_backbone(18), multiple=32, default_size=224, default_classes=1000,
        final_batch_norm=True, **locals(),
    )


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
    binarizer: str = "irnet",
) -> tf.keras.Model:
    return _build(
        "IRNetResNet34", _imagenet_backbone(34), multiple=32, default_size=224, default_classes=1000,
        final_batch_norm=True, **locals(),
    )


_ARGS_DOC = """
    # Arguments
        input_shape: ``(height, width, 3)``; height and width multiples of the
            model's total stride (default: the dataset's size).
        input_tensor: optional Keras tensor to use as the image input.
        weights: ``None`` or the path to a weights file of the same architecture.
        include_top: whether to add the classifier; without it the model
            returns F (layer ``"final_features"``).
        num_classes: classes of the classifier; only with ``include_top=True``.
        variant: only ``None`` (accepted for the IR² builders' signature).
        recovery: only ``False``; IR-Net has no recovery head (IR² models take
            ``binarizer="irnet"`` for IR-Net's binarization with recovery).
        binary_weights: ``False`` for real weights with binary (EDE) activations.
        pad_values: 0.0 (the release's zero padding, default) or 1.0 (LCE
            one-padding).
        padding: (ImageNet models) ``"same"`` or ``"pytorch"``, as for IR2ResNet18.
        classifier_activation: ``"softmax"`` (default) or ``None`` (logits).
        binarizer: ``"irnet"`` (default) or ``"bireal"`` (IR²Net's
            approx_sign/ste_sign with weight clipping, for ablations).

    # Returns
        A functional ``tf.keras.Model``; its EDE temperature is set with
        ``ir2net_tf.binarization.set_ede_temperature``.

    # References
        - [IR-Net](https://arxiv.org/abs/1909.10788), release github.com/htqin/IR-Net
        - [IR²Net](https://arxiv.org/abs/2210.02637), which compares against it
"""

_TABLE = """
    | Top-1 (IR-Net release, reported) | trainable parameters | binary weights |
    | -------------------------------- | -------------------- | -------------- |
    | {top1} | {params} | {binary} |
"""

IRNetResNet20.__doc__ = (
    """Instantiates IR-Net's ResNet-20 for CIFAR-10 (32×32, 10 classes).

    IR2ResNet20's backbone (stem Conv 3×3/16 → BN → Hardtanh; 3 stages × 3
    blocks, a shortcut around each binary conv, option A when downsampling)
    → global average pool → BatchNorm → Dense.
"""
    + _TABLE.format(top1="86.5 %", params="269,850", binary="267,264")
    + _ARGS_DOC
)
IRNetResNet18CIFAR.__doc__ = (
    """Instantiates IR-Net's ResNet-18 for CIFAR-10 (32×32, 10 classes).

    Stem Conv 3×3/64 → BN (no activation); basic blocks [2, 2, 2, 2], widths
    64–512, h = Hardtanh(BN(bconv1(x))), y = Hardtanh(BN(bconv2(h)) +
    shortcut(x)); global average pool → BatchNorm → Dense.
"""
    + _TABLE.format(top1="91.5 %", params="11,174,986", binary="10,985,472")
    + _ARGS_DOC
)
IRNetVGGSmall.__doc__ = (
    """Instantiates IR-Net's VGG-Small for CIFAR-10 (32×32, 10 classes).

    IR2VGGSmall without the recovery head: conv0 (128) → BN → Hardtanh, five
    binary convs (max pool after the 1st, 3rd and 5th) → flatten (8192) → Dense.
"""
    + _TABLE.format(top1="90.4 %", params="4,660,106", binary="4,571,136")
    + _ARGS_DOC
)
IRNetResNet18.__doc__ = (
    """Instantiates IR-Net's ResNet-18 for ImageNet (224×224, 1000 classes).

    Stem Conv 7×7/2 → BN → Hardtanh → MaxPool 3×3/2; [2, 2, 2, 2] blocks of two
    binary convs with a shortcut around each (Conv 1×1/2 → BN when
    downsampling); global average pool → BatchNorm → Dense. (The release also
    declares an unused BatchNorm1d(1000), not built here.)
"""
    + _TABLE.format(top1="58.1 % (top-5 80.0 %)", params="11,690,536", binary="10,985,472")
    + _ARGS_DOC
)
IRNetResNet34.__doc__ = (
    """Instantiates IR-Net's ResNet-34 for ImageNet: IRNetResNet18 with
    [3, 4, 6, 3] blocks.
"""
    + _TABLE.format(top1="62.9 % (top-5 84.1 %)", params="21,798,696", binary="21,086,208")
    + _ARGS_DOC
)
