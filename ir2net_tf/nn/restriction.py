"""Information restriction (docs/method.md, "Information restriction").

During training the network's own attention, read off its final feature map,
decides which input pixels it keeps; the rest are erased and the network also
trains on that restricted image. Everything here is batched TensorFlow with no
Python loop over samples, so it runs inside ``tf.function``, under a
distribution strategy and under XLA.
"""

import tensorflow as tf

DEFAULT_LAMBDA = 0.15
from ir2net_tf.config import NORMALIZATIONS  # noqa: E402  (the setting's values, declared with it)
_EPS = 1e-12


def attention_map(features, normalization: str = "height"):
    """Steps 1–2: the channel-mean of F² (N, h, w), L2-normalized.

    ``normalization="height"`` (default) reproduces the reference exactly: it
    calls ``F.normalize`` on an (N, h, w) tensor, whose default axis 1 is the
    height, so each column is normalized on its own. ``"global"`` normalizes
    each sample's whole map instead (an option, not the paper's behaviour; the
    mask only changes where columns have very different energy).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"Unknown normalization {normalization!r}; choose one of {NORMALIZATIONS}."
        )
    features = tf.convert_to_tensor(features)
    if features.shape.rank != 4:
        raise ValueError(f"features must be (N, h, w, C); got shape {features.shape}.")
    attention = tf.reduce_mean(tf.square(tf.cast(features, tf.float32)), axis=-1)
    axes = [1] if normalization == "height" else [1, 2]
    norm = tf.sqrt(tf.reduce_sum(tf.square(attention), axis=axes, keepdims=True))
    return attention / tf.maximum(norm, _EPS)


def _align_corners_weights(out_size, in_size):
    """(out, in) matrix of bilinear weights with ``align_corners=True``."""
    out_f = tf.cast(out_size, tf.float32)
    in_f = tf.cast(in_size, tf.float32)
    scale = tf.where(out_size > 1, (in_f - 1.0) / tf.maximum(out_f - 1.0, 1.0), 0.0)
    source = tf.range(out_f) * scale
    lower = tf.minimum(tf.floor(source), in_f - 1.0)
    upper = tf.minimum(lower + 1.0, in_f - 1.0)
    frac = source - lower
    lower_w = tf.one_hot(tf.cast(lower, tf.int32), in_size) * (1.0 - frac)[:, None]
    upper_w = tf.one_hot(tf.cast(upper, tf.int32), in_size) * frac[:, None]
    return lower_w + upper_w


def upsample_align_corners(maps, height, width):
    """Step 3: bilinear upsampling of (N, h, w) maps to (N, height, width), with
    PyTorch's ``align_corners=True`` (corner pixels map onto corner pixels).

    Written as two small matrix products so that it needs no resize kernel and
    compiles under XLA on any device.
    """
    shape = tf.shape(maps)
    rows = _align_corners_weights(height, shape[1])
    cols = _align_corners_weights(width, shape[2])
    return tf.einsum("Hh,nhw,Ww->nHW", rows, maps, cols)


def upsampled_attention(features, images, normalization: str = "height"):
    """Steps 1–3: the attention map of F at the size of ``images``, (N, H, W)."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"images must be (N, H, W, channels); got shape {images.shape}.")
    attention = attention_map(features, normalization)
    image_shape = tf.shape(images)
    return upsample_align_corners(attention, image_shape[1], image_shape[2])


def restriction_mask(
    features,
    images,
    lam: float = DEFAULT_LAMBDA,
    normalization: str = "height",
):
    """The binary mask of the input pixels the network attends to.

    Args:
        features: the final backbone feature map F, (N, h, w, C).
        images: the (normalized) input batch x, (N, H, W, channels); only its
            height and width are read.
        lam: the threshold factor λ: a pixel is kept when its upsampled
            attention is strictly above λ times the sample's mean attention.
        normalization: ``"height"`` (the reference's, default) or ``"global"``.

    Returns:
        A float32 (N, H, W, 1) tensor of zeros and ones, with no gradient.
    """
    upsampled = upsampled_attention(features, images, normalization)
    threshold = lam * tf.reduce_mean(upsampled, axis=[1, 2], keepdims=True)
    mask = tf.cast(upsampled > threshold, tf.float32)[..., tf.newaxis]
    return tf.stop_gradient(mask)


def restrict(images, mask):
    """Step 6: x' = x ⊙ M, the mask broadcast over the channels.

    ``images`` are already mean/std-normalized, so erased pixels become 0.
    """
    images = tf.convert_to_tensor(images)
    return images * tf.cast(mask, images.dtype)
