"""Image decoding: encoded bytes (JPEG, PNG; grayscale and CMYK JPEGs too)
to uint8 RGB, whole or only a window of it (a JPEG is then decoded only
inside the window). Decoded images (arrays, mocked tfds) pass through."""

from typing import Callable

import tensorflow as tf


def decode(image):
    """Encoded bytes → uint8 RGB; decoded images (mocked tfds) pass through."""
    if image.dtype == tf.string:
        image = tf.io.decode_image(image, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
    if image.shape.rank == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return image


def is_jpeg(contents):
    """Whether encoded bytes are a JPEG (by its first bytes, not the file
    name: older ImageNet releases hold a PNG named .JPEG)."""
    return tf.equal(tf.strings.substr(contents, 0, 3), b"\xff\xd8\xff")


# Pixels decoded beyond each side of a JPEG window (1 suffices for 4:2:0 and
# 4:2:2 chroma; 2 for wider subsampling).
_JPEG_MARGIN = 2


def decode_window(image, window: Callable):
    """Decodes only the window ``window((height, width)) → (begin, size)``
    (each [y, x], int32) of ``image``; returns (the window as uint8 RGB,
    the whole image's (height, width)).

    A JPEG's size is read from its header and only the window, widened by
    ``_JPEG_MARGIN`` pixels, is decoded (``decode_and_crop_jpeg``), then cut
    to the window: the same pixels as a full decode then a crop, for RGB,
    grayscale and CMYK JPEGs alike (decoded exactly to the window, the pixels
    on its edges differ in chroma-subsampled JPEGs: libjpeg upsamples the
    colour there as at an image edge). Other formats (PNG) are decoded whole,
    then cropped; decoded images (arrays, mocked tfds) are cropped."""

    def crop(full):
        shape = tf.shape(full)[:2]
        begin, size = window(shape)
        return tf.slice(full, tf.concat([begin, [0]], 0), tf.concat([size, [-1]], 0)), shape

    if image.dtype != tf.string:
        return crop(decode(image))

    def jpeg():
        shape = tf.image.extract_jpeg_shape(image)[:2]
        begin, size = window(shape)
        start = tf.maximum(begin - _JPEG_MARGIN, 0)
        stop = tf.minimum(begin + size + _JPEG_MARGIN, shape)
        wide = tf.image.decode_and_crop_jpeg(image, tf.concat([start, stop - start], 0), channels=3)
        return tf.slice(wide, tf.concat([begin - start, [0]], 0), tf.concat([size, [-1]], 0)), shape

    part, shape = tf.cond(is_jpeg(image), jpeg, lambda: crop(decode(image)))
    part.set_shape([None, None, 3])
    return part, shape

