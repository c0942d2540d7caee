"""Fake ILSVRC2012 tars in exactly the layout tfds' imagenet2012 builder reads
(tfds 4.8.3, datasets/imagenet2012): ``ILSVRC2012_img_train.tar`` holds one
``<synset>.tar`` per class of ``<synset>_<n>.JPEG``; ``ILSVRC2012_img_val.tar``
holds ``ILSVRC2012_val_000000NN.JPEG``, labelled by tfds' own
``validation_labels.txt`` (its lines in the sorted order of the names)."""

import io
import os
import tarfile

import numpy as np

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"


def _jpeg(rng, size) -> bytes:
    from PIL import Image

    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _add(tar, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def synsets(count: int) -> list:
    """The first ``count`` synsets of tfds' label file."""
    import tensorflow_datasets as tfds

    path = tfds.core.tfds_path("datasets/imagenet2012/labels.txt")
    return path.read_text().split()[:count]


def write_tars(folder: str, *, classes=3, per_class=4, val_images=8, size=24, seed=0) -> dict:
    """Both tars in ``folder``; returns {file name: path}."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    train = os.path.join(folder, TRAIN_TAR)
    with tarfile.open(train, "w") as outer:
        for synset in synsets(classes):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for n in range(per_class):
                    _add(tar, f"{synset}_{n + 1}.JPEG", _jpeg(rng, size))
            _add(outer, f"{synset}.tar", inner.getvalue())
    val = os.path.join(folder, VAL_TAR)
    with tarfile.open(val, "w") as tar:
        for n in range(val_images):
            _add(tar, f"ILSVRC2012_val_{n + 1:08d}.JPEG", _jpeg(rng, size))
    return {TRAIN_TAR: train, VAL_TAR: val}
