"""Input pipelines: digits split, deterministic resumable epochs, augmentation
and evaluation preprocessing, image folders, tfds (mocked)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data


def test_normalize_uses_imagenet_mean_and_std():
    pixel = np.array([[[0.485, 0.456, 0.406], [0.714, 0.680, 0.631]]], np.float32)
    out = data.normalize(pixel).numpy()
    np.testing.assert_allclose(out[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[0, 1], 1.0, atol=1e-3)


def test_digits_split_is_fixed_and_epochs_are_deterministic_and_skippable():
    ds = data.load("digits", image_size=8)
    assert (ds.train_examples, ds.eval_examples, ds.num_classes) == (1437, 360, 10)
    again = data.load("digits", image_size=8)
    first = list(ds.train(0, 100))
    assert len(first) == 14 and first[0][0].shape == (100, 8, 8, 3)
    np.testing.assert_array_equal(first[3][0], list(again.train(0, 100))[3][0])
    # Resuming at batch 5 yields exactly the batches 5… of the full epoch.
    resumed = list(ds.train(0, 100, skip_batches=5))
    assert len(resumed) == 9
    for a, b in zip(first[5:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    other_epoch = next(iter(ds.train(1, 100)))
    assert not np.array_equal(first[0][1], other_epoch[1])
    labels = np.concatenate([y for _, y in ds.evaluation(100)])
    assert len(labels) == 360 and set(labels) == set(range(10))


def test_cifar_augmentation_flips_and_shifts_by_at_most_four_pixels():
    image = np.zeros((32, 32, 3), np.uint8)
    image[10:20, 12:16] = 255
    outs = [data.cifar_train(tf.constant(image), tf.constant([0, i], tf.int64), 32).numpy() for i in range(20)]
    background = data.normalize(np.zeros((1, 1, 3))).numpy()[0, 0]
    bright = [np.argwhere(np.abs(o - background).sum(-1) > 1e-3) for o in outs]
    assert all(len(b) == 40 for b in bright)  # the patch is never cut: it sits ≥ 4 px inside
    tops = {int(b[:, 0].min()) for b in bright}
    lefts = {int(b[:, 1].min()) for b in bright}
    assert tops <= set(range(6, 15)) and len(tops) > 1
    flipped = set(range(32 - 16 - 4, 32 - 16 + 5))  # mirrored patch starts at 16 ± 4
    assert lefts <= set(range(8, 17)) | flipped and lefts & flipped and lefts - flipped


def test_imagenet_eval_resizes_shorter_side_and_center_crops():
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, 200:] = 255  # right half white: the center crop must show both halves evenly
    out = data.imagenet_eval(tf.constant(image), 224).numpy()
    assert out.shape == (224, 224, 3)
    white = (out[..., 0] > 0).mean()
    assert white == pytest.approx(0.5, abs=0.01)


def test_pca_lighting_adds_eigen_weighted_colour_shift():
    image = tf.zeros((4, 4, 3))
    seed = tf.constant([1, 2], tf.int64)
    shifted = data.pca_lighting(image, seed).numpy()
    alpha = tf.random.stateless_normal([3], seed, stddev=0.1).numpy()
    expected = np.array(data.PCA_EIGVEC) @ (alpha * np.array(data.PCA_EIGVAL))
    np.testing.assert_allclose(shifted, np.broadcast_to(expected, (4, 4, 3)), rtol=1e-5)
    assert np.abs(expected).max() > 0


def test_imagenet_train_crop_and_shape():
    image = tf.constant(np.random.default_rng(0).integers(0, 255, (60, 80, 3)).astype(np.uint8))
    out = data.imagenet_train(image, tf.constant([0, 1], tf.int64), 32)
    assert out.shape == (32, 32, 3) and np.isfinite(out.numpy()).all()
    areas = []
    for i in range(50):
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            [60, 80, 3], tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]), seed=[i, 0],
            min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
            use_image_if_no_bounding_boxes=True,
        )
        areas.append(float(size[0] * size[1]) / (60 * 80))
    assert min(areas) >= 0.07 and max(areas) <= 1.0 and np.std(areas) > 0.05


def _write_images(folder, classes, per_class):
    for c in classes:
        os.makedirs(os.path.join(folder, c), exist_ok=True)
        for i in range(per_class):
            pixels = np.full((12, 10, 3), 40 * classes.index(c) + i, np.uint8)
            tf.io.write_file(os.path.join(folder, c, f"{i}.png"), tf.io.encode_png(pixels))


def test_image_folder_one_subfolder_per_class(tmp_path):
    root = str(tmp_path / "pets")
    _write_images(root, ["cat", "dog"], 10)
    ds = data.load(root, image_size=8)
    assert (ds.num_classes, ds.train_examples, ds.eval_examples) == (2, 18, 2)
    images, labels = next(iter(ds.train(0, 6)))
    assert images.shape == (6, 8, 8, 3) and set(labels.numpy()) <= {0, 1}
    assert sum(len(y) for _, y in ds.evaluation(4)) == 2


def test_image_folder_with_splits_and_errors(tmp_path):
    root = str(tmp_path / "split")
    _write_images(os.path.join(root, "train"), ["a", "b", "c"], 4)
    _write_images(os.path.join(root, "test"), ["a", "b", "c"], 1)
    ds = data.load(root, image_size=8)
    assert (ds.num_classes, ds.train_examples, ds.eval_examples) == (3, 12, 3)
    empty = tmp_path / "empty" / "cls"
    empty.mkdir(parents=True)
    with pytest.raises(ValueError, match="contains no images"):
        data.load(str(tmp_path / "empty"), image_size=8)
    with pytest.raises(ValueError, match="does not exist"):
        data.load(str(tmp_path / "missing"), image_size=8)


def test_tfds_dataset_through_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        ds = data.load("cifar10", image_size=32, data_dir=str(tmp_path))
        assert ds.num_classes == 10 and ds.augment == "cifar" and ds.train_examples == 12
        images, labels = next(iter(ds.train(0, 4)))
        assert images.shape == (4, 32, 32, 3) and labels.dtype == tf.int32


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown dataset .no_such_dataset.. Choose .digits."):
        data.load("no_such_dataset", image_size=8)


def test_data_modules_import_only_the_ones_below_them():
    """decoding ← augment ← dataset ← sources ← loader ← the package (and
    service, which none of them needs): no
    module imports its caller (docs/architecture.md)."""
    import ast

    import ir2net_tf.data

    order = ["decoding", "augment", "dataset", "sources.imagenet_manual", "sources.digits", "sources.folder",
             "sources.tfds", "loader", "service", "__init__"]
    root = os.path.dirname(ir2net_tf.data.__file__)
    found = set()
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
            if module == "sources.__init__":
                continue
            found.add(module)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ir2net_tf.data"):
                    imported = node.module[len("ir2net_tf.data."):]
                    targets = [f"{imported}.{a.name}" if imported == "sources" else imported for a in node.names]
                    for target in targets:
                        assert order.index(target) < order.index(module), f"{module} imports {target}"
    assert found == set(order)
