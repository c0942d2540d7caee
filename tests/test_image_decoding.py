"""Image folders as users have them: damaged files named before training
(issue 25), and JPEG, PNG, CMYK and grayscale files decoding through the
training and evaluation pipelines (issue 27)."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test remembers checked folders in its own cache."""
    monkeypatch.setenv(data.CHECKED_FOLDERS_CACHE, str(tmp_path / "cache"))


def photo(seed, height=40, width=56):
    """A smooth random RGB field (compresses like a photo, unlike noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((4, 5, 3)).astype(np.float32)
    return np.clip(tf.image.resize(coarse[None], (height, width))[0].numpy() * 255, 0, 255).astype(np.uint8)


def write_jpeg(path, seed, **size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_jpeg(photo(seed, **size), quality=90))


def damage_middle(path):
    """Overwrites bytes in the middle of the entropy-coded data (a stray
    marker there is an error, not only libjpeg's warning): the header and the
    end marker stay intact, so only a full decode finds it."""
    original = open(path, "rb").read()
    scan = original.index(b"\xff\xda")
    for middle in range((scan + len(original)) // 2, len(original) - 8, 7):
        content = original[:middle] + b"\xff\x2d" * 4 + original[middle + 8 :]
        try:
            tf.io.decode_jpeg(content, channels=3)
        except tf.errors.InvalidArgumentError:
            open(path, "wb").write(content)
            return
    raise AssertionError(f"no damage of {path} fails to decode")


def image_folder(root, layout, per_class=10):
    for c, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            if layout == "flat":
                write_jpeg(os.path.join(root, name, f"{i}.jpg"), 100 * c + i)
            else:
                split = "validation" if i % 5 == 0 else "train"
                write_jpeg(os.path.join(root, split, name, f"{i}.jpg"), 100 * c + i)


def yielded(dataset, batch_size):
    """(training examples of epoch 0, evaluation examples) the pipelines yield."""
    train = sum(int(labels.shape[0]) for _, labels in dataset.train(0, batch_size))
    evaluation = sum(int(labels.shape[0]) for _, labels in dataset.evaluation(batch_size))
    return train, evaluation


@pytest.mark.parametrize("split", ["train", "validation"])
def test_jpeg_damaged_in_its_middle_is_named_before_training(tmp_path, split):
    root = str(tmp_path / "pets")
    image_folder(root, "splits")
    damaged = os.path.join(root, split, "dog", "5.jpg" if split == "validation" else "3.jpg")
    damage_middle(damaged)
    assert data.damaged_image(damaged) is None  # the header and end checks pass it
    with pytest.raises(ValueError, match=r"holds 1 image file\(s\) that cannot be decoded: "
                       + f"{damaged} \\(cannot be decoded: .*\\)\\. Delete or replace them"):
        data.load(root, image_size=32)
    write_jpeg(damaged, 7)  # replaced: the same folder loads, and yields what it announced
    dataset = data.load(root, image_size=32)
    assert (dataset.train_examples, dataset.eval_examples) == (16, 4)
    assert yielded(dataset, 4) == (16, 4)


def test_damaged_file_stops_the_command_in_one_line(tmp_path, capsys):
    from test_bad_input import SMALL, train_cli

    root = str(tmp_path / "pets")
    image_folder(root, "flat")
    damaged = os.path.join(root, "cat", "4.jpg")
    damage_middle(damaged)
    code, out, err = train_cli(capsys, *SMALL, "--batch_size=4", f"--dataset={root}", f"--model_dir={tmp_path}/run")
    lines = [line for line in err.splitlines() if damaged in line]
    assert code == 1 and len(lines) == 1 and "Delete or replace them" in lines[0]
    assert not os.path.exists(tmp_path / "run" / "metrics.csv")


def test_a_checked_folder_is_not_decoded_again_until_it_changes(tmp_path, monkeypatch):
    root = str(tmp_path / "pets")
    image_folder(root, "flat")
    data.load(root, image_size=16)
    assert len(os.listdir(tmp_path / "cache" / "decoded_image_folders")) == 1
    decoded = []
    monkeypatch.setattr(data, "undecodable_images", lambda paths, **_: decoded.append(paths) or [])
    data.load(root, image_size=16)
    assert decoded == []  # remembered
    monkeypatch.undo()
    monkeypatch.setenv(data.CHECKED_FOLDERS_CACHE, str(tmp_path / "cache"))
    damaged = os.path.join(root, "dog", "9.jpg")
    damage_middle(damaged)  # same size, new modification time
    os.utime(damaged, ns=(os.stat(damaged).st_atime_ns, os.stat(damaged).st_mtime_ns + 1_000_000_000))
    with pytest.raises(ValueError, match=f"{damaged} \\(cannot be decoded"):
        data.load(root, image_size=16)
