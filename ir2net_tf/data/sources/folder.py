"""A folder of images, one sub-folder per class (with or without train/ and
validation/ splits above them), as ``tfds.folder_dataset.ImageFolder``
reads it; every damaged image named before any training: a header and end
check of each file, then one full decode per folder content (remembered in
a cache)."""

import os
from typing import Optional

import numpy as np
import tensorflow as tf
from absl import logging

from ir2net_tf.data.dataset import AUTOTUNE, EVAL_SPLITS, Dataset, shuffled
from ir2net_tf.data.decoding import is_jpeg

FOLDER_HOLDOUT_EVERY = 10  # a flat class folder keeps every 10th image for validation


def _has_images(folder: str) -> bool:
    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    for _, _, files in os.walk(folder):
        if any(os.path.splitext(f)[1].lower() in _SUPPORTED_IMAGE_FORMAT for f in files):
            return True
    return False


# The first bytes of each format ImageFolder reads, and how a whole file ends.
_SIGNATURES = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff", ".jpeg": b"\xff\xd8\xff"}
_ENDINGS = {".png": b"IEND\xaeB`\x82", ".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9"}
_TAIL = 1024  # JPEG writers may add padding after the end-of-image marker


def damaged_image(path: str) -> Optional[str]:
    """Why the image file ``path`` cannot be decoded (not an image of a
    format ImageFolder reads, or cut short), or None. Reads only its first and last bytes,
    so that a folder of a million images is checked in seconds."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(0, os.path.getsize(path) - _TAIL))
            tail = f.read()
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    # By the content, not the name: a PNG named .JPEG decodes (older ImageNet releases hold one).
    kind = next((k for k, signature in _SIGNATURES.items() if head.startswith(signature)), None)
    if kind is None:
        return "empty" if not head else f"not a {suffix[1:].upper()} image"
    if _ENDINGS[kind] not in tail:
        return "truncated"
    return None


def check_image_folder(root: str) -> None:
    """Raises a ValueError naming every damaged image under ``root`` (the
    files ImageFolder would read), before any training step."""
    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    damaged = []
    for folder, directories, names in os.walk(root, followlinks=True):
        # A directory named like an image would be listed, then fail to read mid-epoch.
        damaged += [f"{os.path.join(folder, d)} (a directory, not an image file)" for d in sorted(directories)
                    if os.path.splitext(d)[1].lower() in _SUPPORTED_IMAGE_FORMAT]
        for name in sorted(names):
            if os.path.splitext(name)[1].lower() in _SUPPORTED_IMAGE_FORMAT:
                why = damaged_image(os.path.join(folder, name))
                if why:
                    damaged.append(f"{os.path.join(folder, name)} ({why})")
    if damaged:
        shown = "; ".join(damaged[:10]) + (f"; and {len(damaged) - 10} more" if len(damaged) > 10 else "")
        raise ValueError(
            f"Image folder {root!r} holds {len(damaged)} image file(s) that cannot be decoded: {shown}. "
            "Delete or replace them, then run again."
        )


# A full decode of every image is the only check that finds damage inside a
# file's data; it runs once per folder content (the cache below remembers a
# folder that passed, by its files' names, sizes and modification times).
CHECKED_FOLDERS_CACHE = "IR2NET_CACHE_DIR"
_PROGRESS_SECONDS = 10.0
_PROGRESS_FROM = 2_000  # folders of more images log their progress


def _cache_dir() -> str:
    default = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ir2net_tf")
    return os.path.join(os.environ.get(CHECKED_FOLDERS_CACHE) or default, "decoded_image_folders")


def _image_files(root: str) -> list:
    """Every file under ``root`` that ImageFolder (or our flat reader) reads."""
    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    return sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
        if os.path.splitext(name)[1].lower() in _SUPPORTED_IMAGE_FORMAT
    )


def _folder_digest(root: str, paths: list) -> str:
    import hashlib

    digest = hashlib.sha256(f"v1\0{root}".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _decoded_shape(contents):
    """Decodes all of an image's data (what training may read), cheaply: a
    JPEG at 1/8 scale (libjpeg still reads every entropy-coded byte)."""
    return tf.cond(
        is_jpeg(contents),
        lambda: tf.shape(tf.io.decode_jpeg(contents, channels=3, ratio=8)),
        lambda: tf.shape(tf.io.decode_image(contents, channels=3, expand_animations=False)),
    )


def undecodable_images(paths: list, *, label: str = "") -> list:
    """``"path (why)"`` for each of ``paths`` that does not decode fully.

    Decodes them in parallel; a decode error drops the file
    (``ignore_errors``), and the dropped files are decoded again one by one
    for their error message."""
    paths = list(paths)
    if not paths:
        return []
    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.map(lambda path: (path, _decoded_shape(tf.io.read_file(path))), num_parallel_calls=AUTOTUNE,
                deterministic=False).ignore_errors()
    import time

    decoded, last = set(), time.monotonic()
    for path, _ in ds.as_numpy_iterator():
        decoded.add(path.decode())
        if len(paths) >= _PROGRESS_FROM and time.monotonic() - last > _PROGRESS_SECONDS:
            last = time.monotonic()
            logging.info("Checked %d of %d images%s.", len(decoded), len(paths), label)
    damaged = []
    for path in (p for p in paths if p not in decoded):
        try:
            _decoded_shape(tf.io.read_file(path))
            why = "cannot be decoded"  # failed in the batch run only: still refused
        except (tf.errors.OpError, ValueError) as error:
            message = getattr(error, "message", str(error)).strip().splitlines()
            why = f"cannot be decoded: {message[-1] if message else type(error).__name__}"
        damaged.append(f"{path} ({why})")
    return damaged


def check_images_decode(root: str) -> None:
    """Raises a ValueError naming every image under ``root`` that does not
    decode, whatever part of it is damaged (a bad header or end is found by
    ``check_image_folder`` first). Once a folder passed, the same content
    is not decoded again."""
    paths = _image_files(root)
    marker = os.path.join(_cache_dir(), _folder_digest(root, paths))
    if os.path.exists(marker):
        return
    if len(paths) >= _PROGRESS_FROM:
        logging.info("Decoding the %d images of %s once, to find damaged files before training.", len(paths), root)
    damaged = undecodable_images(paths, label=f" of {root}")
    if damaged:
        shown = "; ".join(damaged[:10]) + (f"; and {len(damaged) - 10} more" if len(damaged) > 10 else "")
        raise ValueError(
            f"Image folder {root!r} holds {len(damaged)} image file(s) that cannot be decoded: {shown}. "
            "Delete or replace them, then run again."
        )
    try:  # remembered for the next run; a cache that cannot be written costs only time
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker + f".{os.getpid()}", "w") as f:
            f.write(root + "\n")
        os.replace(marker + f".{os.getpid()}", marker)
    except OSError:
        pass


def check_folder_classes(root: str, num_classes: int, split_counts: dict) -> None:
    """A classifier needs two classes and examples in every split it uses."""
    if num_classes < 2:
        raise ValueError(
            f"Image folder {root!r} has {num_classes} class folder(s); a classifier needs at least 2 "
            f"(lay it out as {root}/<class name>/<image files>)."
        )
    for split, count in split_counts.items():
        if count < 1:
            raise ValueError(f"The {split!r} split of image folder {root!r} holds no images; add some.")


def load_folder(root, *, image_size, augment, seed) -> Dataset:
    """A folder of images, as ``tfds.folder_dataset.ImageFolder`` reads it.

    Either ``root/<split>/<class>/*.jpg`` with a ``train`` split and a
    ``validation`` or ``test`` split, or ``root/<class>/*.jpg``, in which case
    every 10th image (in ImageFolder's fixed order) is held out. Damaged
    image files, whatever part of them is damaged, are named before any
    training (``check_image_folder``, ``check_images_decode``), so that every
    image counted is one the pipeline yields.
    """
    import tensorflow_datasets as tfds

    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise ValueError(f"Image folder {root!r} does not exist.")
    if not _has_images(root):
        raise ValueError(
            f"Image folder {root!r} contains no images (.jpg, .jpeg, .png). Lay it out as "
            f"{root}/<class name>/<image files>, or with train/ and validation/ splits above the classes."
        )
    check_image_folder(root)
    check_images_decode(root)
    children = {d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))}
    if "train" in children and children & set(EVAL_SPLITS):
        builder = tfds.folder_dataset.ImageFolder(root)
        used = ["train", next(s for s in EVAL_SPLITS if s in children)]
        check_folder_classes(root, int(builder.info.features["label"].num_classes),
                             {s: int(builder.info.splits[s].num_examples) if s in builder.info.splits else 0
                              for s in used})
        # The examples in ImageFolder's order, shuffled by our seed (its own
        # as_dataset shuffles without one: no two runs, and no resumed run,
        # would see the same order).
        label_of = builder.info.features["label"].str2int
        train, held = ([(e.image_path, label_of(e.label)) for e in builder._split_examples[s]] for s in used)
        return Dataset(
            os.path.basename(root), int(builder.info.features["label"].num_classes), len(train), len(held),
            lambda epoch: shuffled(_paths(train), len(train), seed, epoch), lambda: _paths(held),
            ("imagenet" if image_size >= 64 else "cifar") if augment == "auto" else augment, image_size, seed,
            read=tf.io.read_file,
        )
    # A flat class layout: the examples in the order ImageFolder would give
    # them as its split "train", read straight from the folder.
    classes, paths, labels = flat_examples(root)
    count = len(paths)
    check_folder_classes(root, len(classes), {"train": count})
    held_out = count // FOLDER_HOLDOUT_EVERY
    if held_out < 1:
        raise ValueError(f"Image folder {root!r} has {count} images; it needs at least {FOLDER_HOLDOUT_EVERY}.")
    examples = list(zip(paths, labels.tolist()))
    train = [e for i, e in enumerate(examples) if i % FOLDER_HOLDOUT_EVERY]
    held = [e for i, e in enumerate(examples) if not i % FOLDER_HOLDOUT_EVERY]
    return Dataset(
        os.path.basename(root), len(classes), len(train), len(held),
        lambda epoch: shuffled(_paths(train), len(train), seed, epoch), lambda: _paths(held),
        ("imagenet" if image_size >= 64 else "cifar") if augment == "auto" else augment, image_size, seed,
        read=tf.io.read_file,
    )


def _paths(examples) -> tf.data.Dataset:
    """(path, label) pairs as a dataset; the files are read by Dataset.read."""
    paths = [path for path, _ in examples]
    return tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), np.array([l for _, l in examples],
                                                                                        np.int64)))


def flat_examples(root: str):
    """(class names, image paths, labels) of ``root/<class>/<image>`` in
    ``tfds.folder_dataset.ImageFolder``'s order for a split named "train"
    (sorted classes, sorted files, shuffled by ``random.Random("train")``),
    so that the held-out images are those earlier versions held out; no
    temporary split folder is needed."""
    import random

    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    examples = [
        (os.path.join(root, name, f), label)
        for label, name in enumerate(classes)
        for f in sorted(os.listdir(os.path.join(root, name)))
        if f.lower().endswith(_SUPPORTED_IMAGE_FORMAT)
    ]
    random.Random("train").shuffle(examples)
    return classes, [p for p, _ in examples], np.array([label for _, label in examples], np.int64)

