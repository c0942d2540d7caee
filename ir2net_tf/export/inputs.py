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
from ir2net_tf.export.errors import DeployError

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


# Prepared (normalized) images lie within about ±2.7; larger values are pixels.
PREPARED_LIMIT = 3.0


def read_array(path: str):
    """(images, labels or None) from a .npy / .npz file, with an error that
    names the file when it is damaged."""
    import zipfile

    try:
        loaded = np.load(path)
        if path.endswith(".npz"):
            if not loaded.files:
                raise DeployError(f"--images {path!r} holds no arrays.")
            key = "x" if "x" in loaded else loaded.files[0]
            return loaded[key], loaded["y"] if "y" in loaded else None
        return loaded, None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DeployError(f"--images {path!r} cannot be read as a NumPy array ({error}).") from error


def check_array(path: str, images: np.ndarray, labels) -> None:
    """Refuses arrays that would give a parity figure of nothing or of
    something else than the model's input."""
    if images.ndim != 4:
        raise DeployError(f"--images {path!r} holds an array of shape {images.shape}; expected (N, H, W, C).")
    if len(images) == 0:
        raise DeployError(f"--images {path!r} holds no images (shape {images.shape}).")
    if images.shape[-1] not in (1, 3):
        raise DeployError(f"--images {path!r} has {images.shape[-1]} channels; give grayscale (1) or RGB (3) "
                          "images (drop an alpha channel: x[..., :3]).")
    if labels is not None and len(labels) != len(images):
        raise DeployError(f"--images {path!r} holds {len(images)} images but {len(labels)} labels (y); they "
                          "must pair up.")
    if labels is not None and not _class_numbers(labels):
        raise DeployError(f"--images {path!r}: its labels (y) must be class numbers, whole and ≥ 0; got "
                          f"{labels.dtype} values {np.unique(labels)[:5]}.")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        bad = int(np.count_nonzero(~np.isfinite(images)))
        raise DeployError(f"--images {path!r} holds {bad} NaN or infinite values; give finite inputs.")
    if images.dtype.kind == "f" and np.abs(images).max() > PREPARED_LIMIT:
        raise DeployError(
            f"--images {path!r} holds float values up to {np.abs(images).max():g}: pixels on the 0–255 scale, "
            "not prepared (normalized) inputs. Give them as uint8 (x.astype(np.uint8)) to be prepared for you."
        )
    if images.dtype.kind not in "uf":
        raise DeployError(f"--images {path!r} holds {images.dtype} values; give uint8 pixels or float inputs.")


def _class_numbers(labels: np.ndarray) -> bool:
    if labels.dtype.kind in "iu":
        return bool((labels >= 0).all())
    if labels.dtype.kind == "f":
        return bool(np.isfinite(labels).all() and (labels >= 0).all() and (labels == np.round(labels)).all())
    return False


def load_images(path: str, input_shape, limit: int = 1000) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(images, labels or None), at most ``limit`` of them, shaped for the model."""
    if not os.path.exists(path):
        raise DeployError(f"--images {path!r} does not exist.")
    size = input_shape[0]
    labels = None
    if path.endswith((".npy", ".npz")):
        images, labels = read_array(path)
        if images.ndim == 3:
            images = images[..., None]
        check_array(path, images, labels)
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
    decoded = []
    for f in files:
        try:
            image = tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False)
        except tf.errors.OpError as error:
            raise DeployError(f"Cannot decode the image {f!r} (--images): {error.message}") from error
        decoded.append(tf.image.resize(image, (size, size)))
    return _prepare(np.stack([d.numpy().astype(np.uint8) for d in decoded]), size), None
