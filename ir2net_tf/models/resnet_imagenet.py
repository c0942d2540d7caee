"""IR2ResNet18 and IR2ResNet34: Bi-Real Net backbones with information recovery
(SPEC: "ImageNet: IR2ResNet18 and IR2ResNet34")."""

from typing import Optional, Sequence

import tensorflow as tf

from ir2net_tf.layers import PyTorchPadding2D, activation, batch_norm, binary_conv, check_padding
from ir2net_tf.models.common import build_zoo_model
from ir2net_tf.recovery import VARIANTS

WIDTHS = (64, 128, 256, 512)
DEPTHS = {18: (4, 4, 4, 4), 34: (6, 8, 12, 6)}


def bireal_block(
    x, filters: int, strides: int, *, binary_weights: bool, pad_values: float, name: str, padding: str = "same",
    binarizer: str = "bireal",
):
    """y = PReLU(BN(bconv(x)) + shortcut(x)); the shortcut is AvgPool 2×2/2 →
    full-precision Conv 1×1 → BN when the stride or width changes."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = tf.keras.layers.AveragePooling2D(strides, strides=strides, name=f"{name}_down_pool")(x)
        shortcut = tf.keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_down_conv")(shortcut)
        shortcut = batch_norm(name=f"{name}_down_bn")(shortcut)
    y = binary_conv(
        filters,
        strides=strides,
        binary_weights=binary_weights,
        pad_values=pad_values,
        padding=padding,
        name=f"{name}_bconv",
        binarizer=binarizer,
    )(x)
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


def _bireal_backbone(inputs, depth: int, *, binary_weights: bool, pad_values: float, padding: str, binarizer: str):
    """Stem and Bi-Real stages; returns the taps f0 (stem, before the max
    pool), f1–f3 and F (stage 4)."""
    stem, x = imagenet_stem(inputs, act="prelu", padding=padding)
    taps = [stem]
    for stage, (blocks, width) in enumerate(zip(DEPTHS[depth], WIDTHS), start=1):
        for block in range(blocks):
            strides = 2 if stage > 1 and block == 0 else 1
            x = bireal_block(
                x,
                width,
                strides,
                binary_weights=binary_weights,
                pad_values=pad_values,
                padding=padding,
                name=f"stage{stage}_block{block + 1}",
                binarizer=binarizer,
            )
        taps.append(x)
    return taps


def _ir2_resnet(
    depth: int, *, binary_weights, pad_values, padding="same", variant, binarizer="bireal", **arguments
) -> tf.keras.Model:
    check_padding(padding)
    return build_zoo_model(
        f"IR2ResNet{depth}",
        lambda inputs: _bireal_backbone(
            inputs, depth, binary_weights=binary_weights, pad_values=pad_values, padding=padding, binarizer=binarizer
        ),
        multiple=32,
        default_size=224,
        default_classes=1000,
        variants=tuple(VARIANTS),
        head=variant,
        act="prelu",
        names=(f"ir2_resnet{depth}", f"bireal_resnet{depth}"),
        variant=variant,
        **arguments,
    )


_ARGS_DOC = """
    # Arguments
        input_shape: ``(height, width, 3)``; height and width multiples of 32
            (default ``(224, 224, 3)``).
        input_tensor: optional Keras tensor to use as the image input.
        weights: ``None`` (random initialization) or the path to a weights file
            saved from the same architecture (there are no downloadable weights).
        include_top: whether to add global pooling, BatchNorm and the Dense
            classifier. Without it the model returns the fused 7×7×512 map (or F
            when ``recovery=False``).
        num_classes: classes of the classifier (default 1000); only with
            ``include_top=True``.
        variant: fusion head, ``"A"`` (full, default), ``"B"``, ``"C"``, ``"D"``
            (compact CIRec heads, see the table), or a ``FusionHead``.
        recovery: ``False`` builds the bare backbone as the ablation baseline:
            stage 4 → global average pool → Dense, no recovery head and no extra
            BatchNorm (for ResNet-18 this is Bi-Real Net-18).
        binary_weights: ``False`` gives step 1 of the two-step recipe (real
            weights, binary activations); its weights load into the ``True``
            model unchanged.
        pad_values: value the binarized input of each binary conv is padded
            with: 0.0 (the reference, default) or 1.0 (LCE one-padding).
        padding: ``"same"`` (default): TensorFlow's padding. ``"pytorch"``:
            PyTorch's symmetric padding in the stem convolution, the max pool
            and the strided binary convolutions, where TensorFlow's "same"
            pads asymmetrically; weights imported from the authors' PyTorch
            checkpoints (``python -m zoo import-pytorch``) need it to give the
            reference's outputs. It adds padding layers (``stem_pad``,
            ``stem_pool_pad``) and uses ``PyTorchPadQuantConv2D`` for the
            strided binary convolutions, with the same variables: weights load
            into either setting.
        binarizer: ``"bireal"`` (default: the description above) or
            ``"irnet"``: IR-Net's EDE activations and Libra-PB weights
            (docs/irnet.md).
        classifier_activation: activation of the last layer, as in
            ``keras.applications``: ``"softmax"`` (default) returns class
            probabilities, ``None`` returns logits.

    # Input
        Images normalized with the ImageNet mean (0.485, 0.456, 0.406) and std
        (0.229, 0.224, 0.225) on a 0–1 scale
        (``ir2net_tf.data.normalize`` does it).

    # Returns
        A functional ``tf.keras.Model``. Its layer ``"final_features"`` holds F,
        the 7×7×512 stage-4 map that information restriction reads
        (``ir2net_tf.zoo.with_feature_map`` returns ``[output, F]``).
"""


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
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return _ir2_resnet(18, **locals())


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
    binarizer: str = "bireal",
) -> tf.keras.Model:
    return _ir2_resnet(34, **locals())


IR2ResNet18.__doc__ = (
    """Instantiates IR2ResNet18: a Bi-Real Net-18 backbone with information recovery.

    Taps f0 (stem, before the max pool), f1–f3 (stages 1–3) are average-pooled
    to 7×7 and concatenated with F (stage 4): 1024 channels → fusion head →
    512 → global average pool → BatchNorm → Dense.

    # ImageNet metrics (the paper's; trainable parameters of this code)

    | variant | head | top-1 | top-5 | parameters |
    | ------- | ---- | ----- | ----- | ---------- |
    | A | full 1×1 fusion | 68.2 % | 88.0 % | 12,220,264 |
    | B | CIRec r=2, depthwise | 67.0 % | 87.1 % | 11,960,424 |
    | C | CIRec r=4, 8 groups | 66.6 % | 87.0 % | 11,882,344 |
    | D | CIRec r=20, depthwise | 63.8 % | 85.5 % | 11,727,070 |

    10,985,472 binary kernel weights (16 binary convolutions).
"""
    + _ARGS_DOC
    + """
    # References
        - [IR²Net: Information Restriction and Information Recovery for Accurate
          Binary Neural Networks](https://arxiv.org/abs/2210.02637)
        - [Bi-Real Net](https://arxiv.org/abs/1808.00278)
"""
)

IR2ResNet34.__doc__ = (
    """Instantiates IR2ResNet34: a Bi-Real Net-34 backbone with information recovery.

    Same recovery head as IR2ResNet18, on stages of [6, 8, 12, 6] blocks.

    # Parameters of this code (trainable)

    | variant | A | B | C | D |
    | ------- | - | - | - | - |
    | parameters | 22,332,136 | 22,072,296 | 21,994,216 | 21,838,942 |

    21,086,208 binary kernel weights (32 binary convolutions). The paper reports
    no ResNet-34 accuracies in SPEC's table.
"""
    + _ARGS_DOC
    + """
    # References
        - [IR²Net](https://arxiv.org/abs/2210.02637)
"""
)
