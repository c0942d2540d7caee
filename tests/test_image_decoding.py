"""Image folders as users have them: damaged files named before training
(issue 25), and JPEG, PNG, CMYK and grayscale files decoding through the
training and evaluation pipelines (issue 27)."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data
from ir2net_tf.data import augment
from ir2net_tf.data.sources import folder


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
    from tests_support import SMALL_ONE_EPOCH as SMALL, train_cli

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
    monkeypatch.setattr(folder, "undecodable_images", lambda paths, **_: decoded.append(paths) or [])
    data.load(root, image_size=16)
    assert decoded == []  # remembered
    monkeypatch.undo()
    monkeypatch.setenv(data.CHECKED_FOLDERS_CACHE, str(tmp_path / "cache"))
    damaged = os.path.join(root, "dog", "9.jpg")
    damage_middle(damaged)  # same size, new modification time
    os.utime(damaged, ns=(os.stat(damaged).st_atime_ns, os.stat(damaged).st_mtime_ns + 1_000_000_000))
    with pytest.raises(ValueError, match=f"{damaged} \\(cannot be decoded"):
        data.load(root, image_size=16)


# ---------------------------------------------------------------- formats (issue 27)


def encoded(pixels, mode, fmt, **options):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


# name → (PIL mode, format, options): what image folders and ImageNet hold.
FORMATS = {
    "rgb.jpg": ("RGB", "JPEG", dict(quality=90)),
    "rgb444.jpg": ("RGB", "JPEG", dict(quality=90, subsampling=0)),
    "progressive.jpg": ("RGB", "JPEG", dict(quality=90, progressive=True)),
    "gray.jpg": ("L", "JPEG", dict(quality=90)),
    "cmyk.jpg": ("CMYK", "JPEG", dict(quality=90)),
    "png_named.JPEG": ("RGB", "PNG", {}),  # older ImageNet releases hold one
    "rgb.png": ("RGB", "PNG", {}),
    "gray.png": ("L", "PNG", {}),
}


def mixed_folder(root):
    """train/ and validation/ of two classes, each holding every format."""
    for split, count in (("train", 2), ("validation", 1)):
        for c, name in enumerate(("cat", "dog")):
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for i in range(count):
                for f, (mode, fmt, options) in FORMATS.items():
                    pixels = photo(10 * c + i, height=70 + 9 * i, width=90 - 7 * c)
                    with open(os.path.join(root, split, name, f"{i}_{f}"), "wb") as out:
                        out.write(encoded(pixels, mode, fmt, **options))


def whole_then_crop(contents, seed, size):
    """imagenet_train as its definition reads: decode every pixel, crop the
    sampled box, resize, light, flip."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    crop_seed, light_seed, flip_seed = augment._seeds(seed, 3)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]), seed=crop_seed,
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    area = float(tf.reduce_prod(crop_size[:2])) / float(tf.reduce_prod(tf.shape(image)[:2]))
    assert 0.08 - 0.02 <= area <= 1.0  # (rounding to whole pixels)
    image = tf.image.resize(data.to_float(tf.slice(image, begin, crop_size)), (size, size))
    image = tf.image.stateless_random_flip_left_right(data.pca_lighting(image, light_seed), flip_seed)
    return data.normalize(image)


def whole_resize_then_centre(contents, size):
    """imagenet_eval as its definition reads: resize the whole image's
    shorter side to size·256/224, then cut the centre."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    shape = np.array(image.shape[:2], np.float32)
    new = np.round(shape * np.round(size * 256 / 224) / shape.min()).astype(int)
    resized = tf.image.resize(data.to_float(image), new)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return data.normalize(resized[top : top + size, left : left + size])


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_decodes_to_the_same_crops_as_a_whole_decode(name):
    mode, fmt, options = FORMATS[name]
    contents = encoded(photo(3, height=83, width=117), mode, fmt, **options)
    full = tf.io.decode_image(contents, channels=3, expand_animations=False)
    assert full.shape == (83, 117, 3)
    for i in range(6):
        seed = tf.constant([i, 5], tf.int64)
        ours = data.imagenet_train(tf.constant(contents), seed, 64).numpy()
        np.testing.assert_allclose(ours, whole_then_crop(contents, seed, 64).numpy(), atol=1e-5)
    for size in (64, 32):
        ours = data.imagenet_eval(tf.constant(contents), size).numpy()
        assert ours.shape == (size, size, 3)
        np.testing.assert_allclose(ours, whole_resize_then_centre(contents, size).numpy(), atol=1e-5)


def test_folder_of_mixed_formats_trains_evaluates_and_resumes(tmp_path):
    root = str(tmp_path / "mixed")
    mixed_folder(root)
    dataset = data.load(root, image_size=64)
    per_class = len(FORMATS)
    assert (dataset.augment, dataset.train_examples, dataset.eval_examples) == ("imagenet", 4 * per_class,
                                                                               2 * per_class)
    batches = list(dataset.train(0, 4))
    assert len(batches) == per_class and all(images.shape == (4, 64, 64, 3) for images, _ in batches)
    assert all(np.isfinite(images.numpy()).all() for images, _ in batches)
    resumed = list(dataset.train(0, 4, skip_batches=3))
    for (a, la), (b, lb) in zip(batches[3:], resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    evaluation = list(dataset.evaluation(5))
    assert sum(len(labels) for _, labels in evaluation) == 2 * per_class
    assert all(images.shape[1:] == (64, 64, 3) and np.isfinite(images.numpy()).all() for images, _ in evaluation)
