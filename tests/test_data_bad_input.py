"""Training data off the happy path (issues 15 and 20): damaged images,
folders with one class, an empty split, a directory named like an image, a
missing --data_dir, no network: each named before training, leaving nothing
behind."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data

from tests_support import SMALL_ONE_EPOCH as SMALL, train_cli


def _write_png(path, value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(np.full((6, 6, 3), value, np.uint8)))


def _folder(root, classes=("a", "b"), per_class=10):
    for c in classes:
        for i in range(per_class):
            _write_png(os.path.join(root, c, f"{i}.png"), 20 * i)


def test_damaged_images_are_named_before_training(tmp_path, capsys):
    root = str(tmp_path / "pets")
    _folder(root)
    truncated = os.path.join(root, "a", "0.png")
    with open(truncated, "rb") as f:
        content = f.read()
    open(truncated, "wb").write(content[: len(content) // 2])
    text = os.path.join(root, "b", "notes.jpg")
    open(text, "w").write("not an image")
    code, _, err = train_cli(capsys, *SMALL, f"--dataset={root}/", f"--model_dir={tmp_path}/run")
    assert code == 1 and f"{truncated} (truncated)" in err and f"{text} (not a JPG image)" in err


def test_one_class_folder_is_refused(tmp_path):
    root = str(tmp_path / "one")
    _folder(root, classes=("only",))
    with pytest.raises(ValueError, match="1 class folder.*at least 2"):
        data.load(root, image_size=8)


def test_empty_split_is_refused(tmp_path):
    root = str(tmp_path / "split")
    _folder(os.path.join(root, "train"))
    os.makedirs(os.path.join(root, "validation", "a"))
    with pytest.raises(ValueError, match="'validation' split .* holds no images"):
        data.load(root, image_size=8)


def test_folder_datasets_leave_no_temporary_directory(tmp_path):
    pattern = lambda: {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("ir2net_folder_")}  # noqa: E731
    before = pattern()
    root = str(tmp_path / "flat")
    _folder(root)
    dataset = data.load(root, image_size=8)
    assert dataset.train_examples == 18
    assert sum(len(y) for _, y in dataset.evaluation(4)) == 2  # read while the data set is in use
    with pytest.raises(ValueError):
        data.load(str(tmp_path / "one"), image_size=8)  # does not exist
    _folder(str(tmp_path / "few"), per_class=2)
    with pytest.raises(ValueError, match="needs at least"):
        data.load(str(tmp_path / "few"), image_size=8)  # fails after the view was made
    assert pattern() == before


def test_missing_data_dir_is_not_created(tmp_path):
    missing = tmp_path / "tfds"
    with pytest.raises(ValueError, match="--data_dir .* does not exist"):
        data.load("mnist", image_size=8, data_dir=str(missing))
    assert not missing.exists()


def test_offline_fails_fast_with_the_advice(tmp_path, monkeypatch):
    monkeypatch.setattr("ir2net_tf.data.sources.tfds._online", lambda timeout=5.0: False)
    with pytest.raises(ValueError, match="offline.*--data_dir"):
        data.load("mnist", image_size=8, data_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_directory_named_like_an_image_is_named(tmp_path):
    root = str(tmp_path / "pets")
    _folder(root)
    trap = os.path.join(root, "a", "trap.png")
    os.makedirs(trap)
    with pytest.raises(ValueError, match=f"{trap} \\(a directory, not an image file\\)"):
        data.load(root + "/", image_size=8)
