"""Inputs for the parity check: random images, plus real ones from --images.

``--images`` takes a ``.npy`` / ``.npz`` array (an ``.npz`` may hold labels
under ``y``) or image files / a folder of them. uint8 arrays and image files
are resized and normalized the way ``python -m train`` feeds the model
(0–1 scale, ImageNet mean/std); float arrays are taken as already prepared.
"""

import os
from typing import Optional, Tuple

import numpy as np

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
from ir2net_tf.deploy import DeployError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _prepare(images: np.ndarray, size: int) -> np.ndarray:
    from ir2net_tf import data

    images = data.to_float(tf.convert_to_tensor(images))
    if images.shape[-1] == 1:
        images = tf.repeat(images, 3, axis=-1)
    images = tf.image.resize(images, (size, size), method="bilinear")
    return data.normalize(images).numpy()


def image_files(path: str):
    """The image files ``path`` names: itself, or a folder's images
    (``IMAGE_SUFFIXES``) sorted by name; what ``load_images`` reads, in order."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
        return [os.path.join(path, n) for n in names]
    return [path]


def load_images(path: str, input_shape, limit: int = 1000) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(images, labels or None), at most ``limit`` of them, shaped for the model."""
    if not os.path.exists(path):
        raise DeployError(f"--images {path!r} does not exist.")
    size = input_shape[0]
    labels = None
    if path.endswith((".npy", ".npz")):
        loaded = np.load(path)
        if path.endswith(".npz"):
            key = "x" if "x" in loaded else loaded.files[0]
            images, labels = loaded[key], loaded["y"] if "y" in loaded else None
        else:
            images = loaded
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise DeployError(f"--images {path!r} holds an array of shape {images.shape}; expected (N, H, W, C).")
        images = images[:limit]
        labels = labels[:limit] if labels is not None else None
        if images.dtype == np.uint8:
            return _prepare(images, size), labels
        if tuple(images.shape[1:]) != tuple(input_shape):
            raise DeployError(
                f"--images {path!r} holds float images of shape {images.shape[1:]}; the model takes "
                f"{tuple(input_shape)}. Give uint8 images (resized for you) or prepared ones of that shape."
            )
        return images.astype(np.float32), labels
    files = image_files(path)[:limit]
    if not files:
        raise DeployError(f"--images {path!r} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
    try:
        decoded = [
            tf.image.resize(tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False), (size, size))
            for f in files
        ]
    except tf.errors.OpError as error:
        raise DeployError(f"Cannot decode an image under {path!r}: {error.message}") from error
    return _prepare(np.stack([d.numpy().astype(np.uint8) for d in decoded]), size), None
