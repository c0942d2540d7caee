"""The restriction mask against an independent NumPy version of the six steps (docs/method.md)."""

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf.nn.restriction import attention_map, restrict, restriction_mask


def numpy_mask(features, out_h, out_w, lam=0.15):
    """Steps 1–5 of the mask written pixel by pixel, the way PyTorch defines them."""
    attention = (features.astype(np.float64) ** 2).mean(axis=-1)  # (N, h, w)
    n, h, w = attention.shape
    # F.normalize(p=2, dim=1) on (N, h, w): each column j over the height.
    norm = np.sqrt((attention**2).sum(axis=1, keepdims=True))
    attention = attention / np.maximum(norm, 1e-12)
    up = np.zeros((n, out_h, out_w))
    for i in range(out_h):
        y = i * (h - 1) / (out_h - 1) if out_h > 1 else 0.0
        y0 = int(np.floor(y))
        y1 = min(y0 + 1, h - 1)
        dy = y - y0
        for j in range(out_w):
            x = j * (w - 1) / (out_w - 1) if out_w > 1 else 0.0
            x0 = int(np.floor(x))
            x1 = min(x0 + 1, w - 1)
            dx = x - x0
            up[:, i, j] = (
                attention[:, y0, x0] * (1 - dy) * (1 - dx)
                + attention[:, y0, x1] * (1 - dy) * dx
                + attention[:, y1, x0] * dy * (1 - dx)
                + attention[:, y1, x1] * dy * dx
            )
    threshold = lam * up.mean(axis=(1, 2), keepdims=True)
    return (up > threshold).astype(np.float32), up, threshold


@pytest.mark.parametrize(
    "feature_hw, image_hw",
    [((7, 7), (224, 224)), ((4, 4), (32, 32)), ((3, 5), (24, 40)), ((8, 2), (33, 17)), ((1, 1), (5, 5))],
)
def test_mask_matches_numpy(feature_hw, image_hw):
    rng = np.random.default_rng(sum(feature_hw) * 100 + sum(image_hw))
    # Lognormal features give attention maps with real structure (not ~uniform).
    features = rng.lognormal(sigma=1.0, size=(3, *feature_hw, 6)).astype(np.float32)
    images = rng.normal(size=(3, *image_hw, 3)).astype(np.float32)
    for lam in (0.15, 1.0):
        expected, upsampled, threshold = numpy_mask(features, *image_hw, lam=lam)
        mask = restriction_mask(features, images, lam=lam).numpy()
        assert mask.shape == (3, *image_hw, 1)
        # Pixels within float32 rounding of the threshold may go either way.
        ambiguous = np.abs(upsampled - threshold) < 1e-5 * np.abs(threshold)
        disagree = (mask[..., 0] != expected) & ~ambiguous
        assert not disagree.any()
        if lam == 1.0 and feature_hw != (1, 1):
            assert 0.0 < mask.mean() < 1.0  # the mask really erases something


def test_height_normalization_is_not_global():
    features = np.ones((1, 2, 2, 1), np.float32)
    features[0, :, 1] = 3.0  # the right column has 9x the energy
    height = attention_map(features, "height").numpy()[0]
    global_ = attention_map(features, "global").numpy()[0]
    np.testing.assert_allclose(height, np.full((2, 2), 1 / np.sqrt(2)), rtol=1e-6)
    assert global_[0, 1] > 8 * global_[0, 0]
    with pytest.raises(ValueError, match="height"):
        attention_map(features, "columns")


def test_restrict_zeroes_erased_pixels_and_has_no_mask_gradient():
    features = tf.random.normal((2, 4, 4, 8))
    images = tf.random.normal((2, 16, 16, 3))
    with tf.GradientTape() as tape:
        tape.watch(features)
        mask = restriction_mask(features, images, lam=1.0)
        restricted = restrict(images, mask)
        total = tf.reduce_sum(restricted)
    assert tape.gradient(total, features) is None
    erased = mask.numpy()[..., 0] == 0
    assert erased.any()
    assert np.all(restricted.numpy()[erased] == 0)
    np.testing.assert_array_equal(restricted.numpy()[~erased], images.numpy()[~erased])


def test_mask_under_xla_and_mirrored_strategy():
    features = tf.random.normal((4, 4, 4, 8), seed=1)
    images = tf.random.normal((4, 32, 32, 3), seed=2)
    eager = restriction_mask(features, images).numpy()
    compiled = tf.function(restriction_mask, jit_compile=True)(features, images).numpy()
    np.testing.assert_array_equal(eager, compiled)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])

    @tf.function
    def per_replica(f, x):
        return strategy.run(restriction_mask, args=(f, x))

    distributed = per_replica(features, images)
    np.testing.assert_array_equal(
        eager, tf.concat(strategy.experimental_local_results(distributed), 0).numpy()
    )


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(N, h, w, C\)"):
        restriction_mask(tf.zeros((4, 4, 8)), tf.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"\(N, H, W, channels\)"):
        restriction_mask(tf.zeros((1, 4, 4, 8)), tf.zeros((8, 8, 3)))


def test_tensorboard_grid_logger_writes_images(tmp_path):
    from ir2net_tf import zoo
    from ir2net_tf.training.visualize import RestrictionGridLogger

    model = zoo.IR2ResNet20(input_shape=(16, 16, 3), classifier_activation=None)
    before = [w.numpy().copy() for w in model.weights]
    logger = RestrictionGridLogger(model, np.random.normal(size=(2, 16, 16, 3)), str(tmp_path), every=2)
    for epoch in range(4):
        logger.on_epoch_end(epoch)
    steps = []
    for event_file in tmp_path.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            # The images; the λ scalars (restriction/lambda_erasing_*) beside them.
            steps += [(value.tag, event.step) for value in event.summary.value if "lambda" not in value.tag]
    assert sorted(steps) == [("restriction/0", 1), ("restriction/0", 2), ("restriction/0", 4),
                             ("restriction/1", 1), ("restriction/1", 2), ("restriction/1", 4)]
    # Showing never changes the model (batch-norm statistics included).
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())
