"""Augmentation and evaluation preprocessing (docs/recipes.md: the recipes'
augmentation): normalization, CIFAR's flip and shift, ImageNet's random
resized crop with PCA lighting and its centre crop, and ``preprocessors``,
the (train, eval) pair an augmentation name stands for.

``seed`` is a stateless seed (shape [2]) so that every sample of every epoch
is augmented the same way on a rerun.
"""

from typing import Callable, Tuple

import tensorflow as tf

from ir2net_tf.data.decoding import decode, decode_window

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# AlexNet's PCA lighting noise: eigenvalues and eigenvectors (columns) of the
# ImageNet RGB covariance, on the 0–1 scale.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
PCA_ALPHA_STD = 0.1
from ir2net_tf.config import AUGMENTATIONS  # noqa: E402  (the setting's values, declared with it)


def normalize(images):
    """ImageNet mean/std normalization of images on the 0–1 scale (what every
    zoo model expects)."""
    images = tf.convert_to_tensor(images, tf.float32)
    return (images - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def _scaled_and_normalized(image, unit, shift=0.0):
    """normalize(image·unit + shift) as one multiply-add per pixel:
    image·(unit/std) + (shift − mean)/std (equal up to float rounding, below
    1e-5). Three broadcasting operations on a 224² crop took 11 % of an
    evaluation image's time on one core."""
    std = tf.constant(IMAGENET_STD)
    return image * (unit / std) + (shift - tf.constant(IMAGENET_MEAN)) / std


def to_float(image):
    """uint8 (or already float 0–1) image → float32 on the 0–1 scale."""
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) / 255.0
    return tf.cast(image, tf.float32)


def _seeds(seed, count):
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def pad_and_crop(image, seed, pad: int):
    """Zero-pad ``pad`` pixels on every side, then a random crop of the
    original size (CIFAR's 4-pixel translation)."""
    shape = tf.shape(image)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(padded, shape, seed=seed)


def cifar_train(image, seed, size: int, flip: bool = True):
    """CIFAR augmentation: random horizontal flip, 4-px zero pad + random crop
    (the pad scales with the image: 4 px at 32), normalize."""
    flip_seed, crop_seed = _seeds(seed, 2)
    image = tf.image.resize(to_float(decode(image)), (size, size))
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = pad_and_crop(image, crop_seed, max(1, size // 8))
    return normalize(image)


def resize_only(image, size: int):
    return normalize(tf.image.resize(to_float(decode(image)), (size, size)))


def _resized_crop(image, seed, size: int, scale, ratio):
    """random_resized_crop on the image's own scale (0–255 for uint8), and
    the factor to 0–1."""
    bbox = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4])

    def window(shape):
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.concat([shape, [3]], 0),
            bbox,
            seed=seed,
            min_object_covered=0.0,
            aspect_ratio_range=ratio,
            area_range=scale,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        return begin[:2], crop_size[:2]

    crop, _ = decode_window(image, window)
    # uint8 resized as it is (resize computes in float32), scaled to 0–1 after:
    # 224² pixels to scale instead of the whole crop.
    unit = 1.0 / 255.0 if crop.dtype == tf.uint8 else 1.0
    return tf.image.resize(crop, (size, size)), unit


def random_resized_crop(image, seed, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """Inception-style crop: a box of random area (``scale`` of the image) and
    aspect ratio, resized to ``size``, on the 0–1 scale; falls back to the
    whole image. Takes an image or its encoded bytes (a JPEG is decoded only
    inside the box)."""
    resized, unit = _resized_crop(image, seed, size, scale, ratio)
    return resized * unit


def lighting_shift(seed, alpha_std: float = PCA_ALPHA_STD):
    """AlexNet lighting noise's colour shift Σ_i α_i λ_i v_i, α ~ N(0, std)."""
    alpha = tf.random.stateless_normal([3], seed, stddev=alpha_std)
    return tf.linalg.matvec(tf.constant(PCA_EIGVEC), alpha * tf.constant(PCA_EIGVAL))


def pca_lighting(image, seed, alpha_std: float = PCA_ALPHA_STD):
    """AlexNet lighting noise: add Σ_i α_i λ_i v_i to every pixel, α ~ N(0, std)."""
    return image + lighting_shift(seed, alpha_std)


def imagenet_train(image, seed, size: int):
    """Random resized crop (scale 0.08–1), PCA lighting (α std 0.1), flip, normalize.

    Scaling to 0–1, lighting and normalization are one multiply-add per
    pixel: normalize(x/255 + shift) = x·(1/(255·std)) + (shift − mean)/std
    (equal up to float rounding, below 1e-5)."""
    crop_seed, light_seed, flip_seed = _seeds(seed, 3)
    image, unit = _resized_crop(image, crop_seed, size, (0.08, 1.0), (3 / 4, 4 / 3))
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return _scaled_and_normalized(image, unit, lighting_shift(light_seed))


def imagenet_eval(image, size: int):
    """Resize the shorter side to size·256/224 (256 at 224), center crop ``size``.

    The whole image is decoded: decoding only the centre window
    (``decode_and_crop_jpeg``) saves little here (the window keeps 77 % of
    the rows at 224, and the time is in the entropy decoding of those rows),
    and resizing only the window cannot sample the same positions with the
    fast bilinear kernel (a crop then a resize samples up to half a pixel
    elsewhere; ``crop_and_resize`` at the exact positions is slower than the
    whole resize: docs/performance.md). The uint8 image is resized as it is,
    and the scaling of the crop to 0–1 and the normalization are one
    multiply-add per pixel, as in ``imagenet_train`` (equal to scaling first,
    then normalizing, up to float rounding, below 1e-5; the three
    broadcasting operations took 11 % of the image's time on one core)."""
    image = decode(image)
    to_unit = 1.0 / 255.0 if image.dtype == tf.uint8 else 1.0  # (to_float's scaling)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    resize_to = tf.round(size * 256.0 / 224.0)
    scale = resize_to / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, new_shape)  # float32, on the 0–255 scale of a uint8 image
    top = (new_shape[0] - size) // 2
    left = (new_shape[1] - size) // 2
    image = image[top : top + size, left : left + size, :]
    image.set_shape([size, size, 3])
    return _scaled_and_normalized(image, to_unit)


def preprocessors(augment: str, size: int) -> Tuple[Callable, Callable]:
    """(train_fn(image, seed), eval_fn(image)) for augmentation ``augment``."""
    if augment == "cifar":
        return (lambda image, seed: cifar_train(image, seed, size)), (lambda image: resize_only(image, size))
    if augment == "shift":  # translation only: digits must not be mirrored
        return (lambda image, seed: cifar_train(image, seed, size, flip=False)), (lambda image: resize_only(image, size))
    if augment == "imagenet":
        return (lambda image, seed: imagenet_train(image, seed, size)), (lambda image: imagenet_eval(image, size))
    if augment == "none":
        return (lambda image, seed: resize_only(image, size)), (lambda image: resize_only(image, size))
    raise ValueError(f"Unknown augmentation {augment!r}; choose one of {AUGMENTATIONS}.")

