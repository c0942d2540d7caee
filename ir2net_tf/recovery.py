"""Information recovery (docs/method.md, "Information recovery").

Shallow feature maps ("taps") are average-pooled to the size of the final
feature map F, concatenated with it, and fused by a small full-precision head:
either the full 1×1 fusion (variant A) or the compact Ghost-style ``CIRec``.
"""

import dataclasses
import math
from typing import Optional, Sequence, Union

import tensorflow as tf

from ir2net_tf.layers import AdaptiveAvgPool2D, ChannelSlice, activation, batch_norm


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
        if self.cheap_groups in (None, "depthwise"):
            return primary_channels
        if self.cheap_groups == "m//16":
            return max(1, primary_channels // 16)
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
        "ir2net_tf.recovery.FusionHead."
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

    Args:
        taps: the shallow feature maps, in order (f0, f1, …).
        final: the final backbone feature map F.
        out_channels: channels of the fused map (default: F's channels).
        head: the fusion head (variant letter or ``FusionHead``).
        act: ``"prelu"`` or ``"hardtanh"``.
    """
    size = final.shape[1]
    if size is None or final.shape[2] != size:
        raise ValueError(
            f"The final feature map must be square with a static size; got {final.shape}."
        )
    pooled = [
        AdaptiveAvgPool2D(size, name=f"{name}_pool_f{i}")(tap) for i, tap in enumerate(taps)
    ]
    x = tf.keras.layers.Concatenate(name=f"{name}_concat")([*pooled, final])
    return fusion_head(x, out_channels or final.shape[-1], head, act, name=f"{name}_fusion")
