"""Information recovery (docs/method.md, "Information recovery").

Shallow feature maps ("taps") are average-pooled to the size of the final
feature map F, concatenated with it, and fused by a small full-precision head:
either the full 1×1 fusion (variant A) or the compact Ghost-style ``CIRec``.
"""

import dataclasses
import math
from typing import Optional, Sequence, Union

import tensorflow as tf

from ir2net_tf.nn.layers import PACKAGE, AdaptiveAvgPool2D, ChannelSlice, activation, batch_norm


@dataclasses.dataclass(frozen=True)
class FusionHead:
    """Which fusion head to build.

    Attributes:
        kind: ``"full"`` (1×1 conv → BN → act) or ``"compact"`` (CIRec).
        ratio: CIRec's ratio r (compact only): ceil(C_out / r) primary channels.
        cheap_groups: groups of CIRec's cheap 3×3 convolution: ``"depthwise"``
            (g = m, a depthwise conv with depth multiplier r − 1), an int, or
            ``"m//16"`` (variant C: the primary channel count divided by 16).
    """

    kind: str
    ratio: Optional[int] = None
    cheap_groups: Union[int, str, None] = None

    def __post_init__(self):
        if self.kind not in ("full", "compact"):
            raise ValueError(f"FusionHead kind must be 'full' or 'compact'; got {self.kind!r}.")
        if self.kind == "compact" and (self.ratio is None or self.ratio < 2):
            raise ValueError(f"A compact head needs an integer ratio >= 2; got {self.ratio!r}.")

    def describe(self) -> str:
        """A few words for tables: "full 1×1 fusion", "CIRec r=4, groups m//16"."""
        if self.kind == "full":
            return "full 1×1 fusion"
        groups = "depthwise" if self.cheap_groups in (None, "depthwise") else f"groups {self.cheap_groups}"
        return f"CIRec r={self.ratio}, {groups}"

    def groups_for(self, primary_channels: int) -> int:
        """The cheap convolution's groups for m = ``primary_channels``.

        ``"m//16"`` (variant C) is m // 16 for the paper's m = 128 (8 groups);
        for another width it is the largest divisor of m not above m // 16, so
        that the groups divide m and the 3m cheap channels (m = 200, a
        BinaryDenseNet45's 800-wide F: 10 groups, not 12)."""
        if self.cheap_groups in (None, "depthwise"):
            return primary_channels
        if self.cheap_groups == "m//16":
            bound = max(1, primary_channels // 16)
            return max(g for g in range(1, bound + 1) if primary_channels % g == 0)
        return int(self.cheap_groups)


# The paper's ImageNet variants A–D (docs/architectures.md). The models'
# descriptions (ir2net_tf.models.spec) say which variants each model has.
VARIANTS = {
    "A": FusionHead("full"),
    "B": FusionHead("compact", ratio=2, cheap_groups="depthwise"),
    "C": FusionHead("compact", ratio=4, cheap_groups="m//16"),
    "D": FusionHead("compact", ratio=20, cheap_groups="depthwise"),
}


def resolve_head(head: Union[str, FusionHead]) -> FusionHead:
    """A variant letter ("A"–"D", any case) or a ``FusionHead`` → a ``FusionHead``."""
    if isinstance(head, FusionHead):
        return head
    if isinstance(head, str) and head.strip().upper() in VARIANTS:
        return VARIANTS[head.strip().upper()]
    raise ValueError(
        f"Unknown variant {head!r}; choose one of {sorted(VARIANTS)} or pass a "
        "ir2net_tf.nn.recovery.FusionHead."
    )


def full_fusion(x, out_channels: int, act: str, name: str = "fusion"):
    """Variant A: Conv 1×1 (no bias) → BN → act."""
    x = tf.keras.layers.Conv2D(out_channels, 1, use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm(name=f"{name}_bn")(x)
    return activation(act, name=f"{name}_act")(x)


def cirec(
    x,
    out_channels: int,
    *,
    ratio: int,
    cheap_groups: Optional[int] = None,
    act: str,
    name: str = "cirec",
):
    """The compact fusion head ``CIRec(C_in, C_out, r, g)``.

    m = ceil(C_out / r) primary channels from a 1×1 conv; a cheap grouped 3×3
    conv makes m·(r − 1) more; both go through BN → act, are concatenated and
    the first C_out channels are kept. ``cheap_groups=None`` (or m) makes the
    cheap part a depthwise conv with depth multiplier r − 1, whose output
    channel k comes from input channel k // (r − 1), as in PyTorch.
    """
    primary_channels = math.ceil(out_channels / ratio)
    cheap_channels = primary_channels * (ratio - 1)
    groups = primary_channels if cheap_groups is None else int(cheap_groups)
    if groups < 1 or primary_channels % groups or cheap_channels % groups:
        raise ValueError(
            f"{name}: cheap_groups={groups} must divide both the {primary_channels} "
            f"primary and the {cheap_channels} cheap channels."
        )

    primary = tf.keras.layers.Conv2D(
        primary_channels, 1, use_bias=False, name=f"{name}_primary_conv"
    )(x)
    primary = batch_norm(name=f"{name}_primary_bn")(primary)
    primary = activation(act, name=f"{name}_primary_act")(primary)

    if groups == primary_channels:
        cheap = tf.keras.layers.DepthwiseConv2D(
            3,
            padding="same",
            depth_multiplier=ratio - 1,
            use_bias=False,
            name=f"{name}_cheap_conv",
        )(primary)
    else:
        cheap = tf.keras.layers.Conv2D(
            cheap_channels,
            3,
            padding="same",
            groups=groups,
            use_bias=False,
            name=f"{name}_cheap_conv",
        )(primary)
    cheap = batch_norm(name=f"{name}_cheap_bn")(cheap)
    cheap = activation(act, name=f"{name}_cheap_act")(cheap)

    out = tf.keras.layers.Concatenate(name=f"{name}_concat")([primary, cheap])
    return ChannelSlice(out_channels, name=f"{name}_slice")(out)


def fusion_head(x, out_channels: int, head: Union[str, FusionHead], act: str, name: str = "fusion"):
    """Builds the head ``head`` (a variant letter or a ``FusionHead``) on ``x``."""
    head = resolve_head(head)
    if head.kind == "full":
        return full_fusion(x, out_channels, act, name=name)
    groups = head.groups_for(math.ceil(out_channels / head.ratio))
    return cirec(x, out_channels, ratio=head.ratio, cheap_groups=groups, act=act, name=name)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class PoolToMatch(tf.keras.layers.Layer):
    """Average-pools a tap to the height and width of F: ``[tap, F] → tap'``.

    For the maps ``AdaptiveAvgPool2D`` cannot take: a dynamic size (a model
    built with ``input_shape=(None, None, C)``: the window is found when the
    model runs), or a tap whose size is not a whole multiple of F's (AlexNet-
    style networks, 55 → 6): the window is k = ⌊H / h⌋, the bottom and right
    H − k·h rows and columns are dropped, then k×k/k pooling.
    """

    def call(self, inputs):
        tap, final = inputs
        size = tf.shape(final)[1:3]
        factor = tf.shape(tap)[1:3] // size
        tf.debugging.assert_positive(
            factor, message=f"{self.name}: a tap is smaller than the final feature map F")
        kept = tap[:, : factor[0] * size[0], : factor[1] * size[1], :]
        batch, channels = tf.shape(tap)[0], tf.shape(tap)[3]
        blocks = tf.reshape(kept, [batch, size[0], factor[0], size[1], factor[1], channels])
        return tf.reduce_mean(blocks, axis=[2, 4])

    def compute_output_shape(self, input_shape):
        tap, final = input_shape
        return tf.TensorShape([tap[0], final[1], final[2], tap[3]])


def _pool_to(tap, final, name):
    """``tap`` pooled to ``final``'s size: AdaptiveAvgPool2D where the sizes are
    static and divide evenly (the paper's models: what they export as), else
    ``PoolToMatch``."""
    size, tap_size = final.shape[1], tap.shape[1]
    static = None not in (size, final.shape[2], tap_size, tap.shape[2]) and final.shape[2] == size
    if static and tap_size % size == 0 and tap.shape[2] == tap_size:
        return AdaptiveAvgPool2D(size, name=name)(tap)
    if static and tap_size < size:
        raise ValueError(f"{name}: the tap ({tap.shape[1:3]}) is smaller than the final feature map "
                         f"({final.shape[1:3]}); tap earlier layers.")
    return PoolToMatch(name=name)([tap, final])


def recover(
    taps: Sequence[tf.Tensor],
    final,
    *,
    out_channels: Optional[int] = None,
    head: Union[str, FusionHead] = "A",
    act: str = "prelu",
    name: str = "recovery",
):
    """Pools ``taps`` to the size of ``final``, concatenates them with it and fuses.

    The sizing rule (docs/architectures.md, "Recovery heads on other
    backbones"): the head fuses the concatenation (Σ tap widths + F's width)
    to ``out_channels``, by default F's width, so the classifier sees as many
    channels as the bare backbone's; A–D keep their definitions at that
    width (IR2ResNet18: 1024 → 512; CIRec's m = ⌈C_out / r⌉).

    Args:
        taps: the shallow feature maps, in order (f0, f1, …).
        final: the final backbone feature map F.
        out_channels: channels of the fused map (default: F's channels).
        head: the fusion head (variant letter or ``FusionHead``).
        act: ``"prelu"`` or ``"hardtanh"``.
    """
    pooled = [_pool_to(tap, final, f"{name}_pool_f{i}") for i, tap in enumerate(taps)]
    x = tf.keras.layers.Concatenate(name=f"{name}_concat")([*pooled, final])
    return fusion_head(x, out_channels or final.shape[-1], head, act, name=f"{name}_fusion")
