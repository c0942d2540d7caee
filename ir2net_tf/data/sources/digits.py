"""scikit-learn's 8×8 digits (the offline demo)."""

import numpy as np
import tensorflow as tf

from ir2net_tf.data.dataset import Dataset, shuffled

DIGITS_HOLDOUT = 0.2


def digits_arrays(size: int):
    """scikit-learn's 1,797 8×8 digits as uint8 RGB ``size``×``size`` images,
    split once (stratified, fixed seed) into 80 % train and 20 % held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).astype(np.float32)[..., None]
    images = tf.image.resize(images, (size, size), method="bilinear").numpy()
    images = np.repeat(np.clip(np.round(images), 0, 255).astype(np.uint8), 3, axis=-1)
    return train_test_split(
        images, digits.target.astype(np.int32), test_size=DIGITS_HOLDOUT, random_state=0, stratify=digits.target
    )


def load_digits(image_size: int, augment: str, seed: int) -> Dataset:
    x_train, x_test, y_train, y_test = digits_arrays(image_size)

    def train_source(epoch):
        ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        return shuffled(ds, len(x_train), seed, epoch)

    return Dataset(
        "digits", 10, len(x_train), len(x_test), train_source,
        lambda: tf.data.Dataset.from_tensor_slices((x_test, y_test)),
        "shift" if augment == "auto" else augment, image_size, seed,
    )

