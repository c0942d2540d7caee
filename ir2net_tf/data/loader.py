"""A dataset by its name (``--dataset``): ``digits``, a folder of images, or
a tensorflow-datasets name; and the checks ``python -m train`` runs on the
name before it writes anything."""

import os
from typing import Optional

from ir2net_tf.data.augment import AUGMENTATIONS
from ir2net_tf.data.dataset import Dataset
from ir2net_tf.data.sources import digits, folder, tfds


def is_folder(name: str) -> bool:
    return os.sep in name or name.startswith(".") or os.path.isdir(name)


def check_paths(name: str, data_dir: Optional[str]) -> None:
    """The dataset's folder or ``data_dir`` exists (nothing is created for
    a mistyped path); cheap, so that ``python -m train`` checks it before
    writing anything."""
    if name != "digits" and is_folder(name) and not os.path.isdir(os.path.expanduser(name)):
        raise ValueError(f"Image folder {os.path.abspath(os.path.expanduser(name))!r} does not exist (--dataset).")
    if not is_folder(name):
        tfds.check_data_dir(name, data_dir)


def check_splits(name: str, train_split: Optional[str], validation_split: Optional[str]) -> None:
    """--train_split / --validation_split: valid specs, for a tfds dataset."""
    given = [o for o, v in (("--train_split", train_split), ("--validation_split", validation_split)) if v]
    if given and (name == "digits" or is_folder(name)):
        raise ValueError(f"{' and '.join(given)} slice tensorflow-datasets splits; --dataset {name!r} has fixed "
                         "splits. Drop them, or train on a tensorflow-datasets dataset.")
    tfds.check_split_spec(train_split, "--train_split")
    tfds.check_split_spec(validation_split, "--validation_split")


def check_manual_download(name: str, data_dir: Optional[str], manual_dir: Optional[str]) -> None:
    """Before any file is written (``python -m train`` checks settings
    first): a manual-download tfds dataset that still has to be prepared has
    its files in place."""
    if name == "digits" or is_folder(name):
        return
    tfds.check_manual_download(name, data_dir, manual_dir)


def load(name: str, *, image_size: int, data_dir=None, manual_dir=None, augment="auto", seed=0, train_split=None,
         validation_split=None) -> Dataset:
    """The dataset ``name``: ``digits``, a folder path, or a tfds name;
    ``train_split`` / ``validation_split``: tfds split specs (slices such as
    ``train[:1%]``) instead of the whole train and held-out splits."""
    from ir2net_tf.flag_domains import at_least

    at_least(1).check(image_size, "image_size")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {augment!r}; choose one of {AUGMENTATIONS}.")
    check_splits(name, train_split, validation_split)
    if name == "digits":
        return digits.load_digits(image_size, augment, seed)
    if is_folder(name):
        return folder.load_folder(name, image_size=image_size, augment=augment, seed=seed)
    return tfds.load_tfds(name, data_dir=data_dir, manual_dir=manual_dir, image_size=image_size, augment=augment,
                          seed=seed, train_split=train_split, validation_split=validation_split)
