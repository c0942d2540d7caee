"""The IR² step's restriction metric, its exact shortcut, the reference's
weight dynamics (no clipping) and the CIFAR models' PyTorch padding."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests_support import REPO
from ir2net_tf import zoo
from ir2net_tf.nn.restriction import restriction_mask, upsampled_attention
from ir2net_tf.training.trainer import IR2Trainer, with_feature_map

SIZE = 8


def _batch(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32)
    x[:, : SIZE // 2, : SIZE // 2] += 3.0  # uneven attention: λ = 1 erases part of it
    return tf.constant(x), tf.constant(rng.integers(0, 10, size=n), tf.int32)


@pytest.mark.slow
def test_kept_metric_is_the_mean_of_the_applied_masks():
    tf.keras.utils.set_random_seed(0)
    model = zoo.build("IR2ResNet20", input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    trainer = IR2Trainer(model, restriction_lambda=1.0)
    # Learning rate 0: the weights, hence the masks, are those of the start.
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.0))
    with_f = with_feature_map(model)
    masks = []
    for n, seed in ((8, 1), (4, 2)):  # unequal batches: the metric weighs every image alike
        x, y = _batch(n, seed)
        saved = [v.numpy() for v in model.non_trainable_weights]
        _, features = with_f(x, training=True)
        masks.append(restriction_mask(features, x, 1.0).numpy())
        for variable, value in zip(model.non_trainable_weights, saved):
            variable.assign(value)
        logs = trainer.train_step((x, y))
    expected = float(np.concatenate(masks).mean())
    assert 0.0 < expected < 1.0
    assert float(logs["kept"]) == pytest.approx(expected, abs=1e-6)
    assert "kept" in [m.name for m in trainer.metrics]
    # Restriction off: no such metric.
    assert "kept" not in [m.name for m in IR2Trainer(model, restriction_lambda=0.0).metrics]


@pytest.mark.parametrize("lam", [1e-6, 1.0])  # the mask keeps everything (one pass) / erases part
def test_step_applies_the_gradient_of_the_ir2_loss_plus_weight_decay(lam):
    tf.keras.utils.set_random_seed(0)
    model = zoo.build("IR2ResNet20", input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    x, y = _batch(8, 1)
    trainer = IR2Trainer(model, restriction_lambda=lam, weight_decay=1e-2)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(1.0))
    initial = model.get_weights()
    before = [v.numpy() for v in model.trainable_variables]
    logs = trainer.train_step((x, y))
    applied = [b - v.numpy() for b, v in zip(before, model.trainable_variables)]
    model.set_weights(initial)
    with tf.GradientTape() as tape:
        loss, _ = trainer.ir2_loss(x, y, None)
    expected = [g + 1e-2 * b for g, b in zip(tape.gradient(loss, model.trainable_variables), before)]
    assert float(logs["loss"]) == pytest.approx(float(loss), rel=1e-6)
    assert (float(logs["kept"]) == 1.0) == (lam < 1e-3)
    assert max(float(np.abs(g).max()) for g in expected) > 0.1
    for a, e in zip(applied, expected):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)


def test_erasing_lambdas_erase_those_fractions():
    from ir2net_tf.training.visualize import ERASED_FRACTIONS, erasing_lambdas

    rng = np.random.default_rng(0)
    features = tf.constant(rng.gamma(1.0, size=(4, 4, 4, 8)), tf.float32)
    images = tf.zeros((4, 32, 32, 3))
    lambdas = erasing_lambdas(upsampled_attention(features, images).numpy())
    assert list(lambdas) == list(ERASED_FRACTIONS)
    for fraction, lam in lambdas.items():
        erased = 1.0 - float(tf.reduce_mean(restriction_mask(features, images, lam)))
        assert erased == pytest.approx(fraction, abs=2.0 / (4 * 32 * 32))


# Shortcut (one pass, closed-form second batch-norm update) against the
# two-pass step, in float64, on the same batch and weights: tf.function, XLA,
# and MirroredStrategy on two logical CPUs where, at λ = 0.2, the first
# replica's all-zero images are kept whole and the second replica's uneven
# ones are not, so each replica takes its own branch.
_SHORTCUT_SCRIPT = textwrap.dedent("""
    import ir2net_tf, json, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.keras.backend.set_floatx("float64")
    import larq as lq
    from ir2net_tf.nn.restriction import restriction_mask
    from ir2net_tf.training.trainer import IR2Trainer, moving_statistics, with_feature_map
    from ir2net_tf.zoo import FEATURES_LAYER
    # 5 classes: no top-5 metric, whose Keras op takes float32 only.
    SIZE, LR, CLASSES = 8, 0.1, 5

    def tiny():  # compiles with XLA in seconds
        inputs = tf.keras.Input((SIZE, SIZE, 3))
        x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
        x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
        x = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, input_quantizer="approx_sign",
                                  kernel_quantizer="ste_sign")(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.9)(x)
        x = tf.keras.layers.Activation("linear", name=FEATURES_LAYER)(x)
        return tf.keras.Model(inputs, tf.keras.layers.Dense(CLASSES)(tf.keras.layers.GlobalAveragePooling2D()(x)))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, SIZE, SIZE, 3)); x[:, :4, :4] += 3
    y = rng.integers(0, CLASSES, size=8).astype(np.int32)
    mixed = x.copy(); mixed[:4] = 0.0

    def kept_per_replica(images, lam):  # each half's mask, with its own batch statistics
        tf.keras.utils.set_random_seed(0)
        features = with_feature_map(tiny())
        return [float(tf.reduce_mean(restriction_mask(features(h, training=True)[1], h, lam)))
                for h in (images[:4], images[4:])]

    def step(build, images, lam, shortcut, jit=False, strategy=None):
        strategy = strategy or tf.distribute.OneDeviceStrategy("/cpu:0")
        with strategy.scope():
            tf.keras.utils.set_random_seed(0)
            model = build()
            trainer = IR2Trainer(model, restriction_lambda=lam, restriction_shortcut=shortcut)
            trainer.compile(optimizer=tf.keras.optimizers.SGD(LR, momentum=0.9), jit_compile=jit)
        assert trainer.restriction_shortcut == shortcut
        before = [v.numpy() for v in model.trainable_variables]
        logs = trainer.train_on_batch(images, y, return_dict=True)
        after = [v.numpy() for v in model.trainable_variables]
        return {
            "loss": float(logs["loss"]), "kept": float(logs["kept"]),
            "grads": [(b - a) / LR for b, a in zip(before, after)], "weights": after,
            "moving": [v.numpy() for v, _ in moving_statistics(model)],
            "dtype": model.trainable_variables[0].dtype.name,
        }

    def compare(**kwargs):
        fast, slow = step(shortcut=True, **kwargs), step(shortcut=False, **kwargs)
        diff = lambda key: max(float(np.max(np.abs(a - b))) for a, b in zip(fast[key], slow[key]))
        moved = max(float(np.max(np.abs(m))) for m in fast["moving"])
        return {"loss": [fast["loss"], slow["loss"]], "kept": fast["kept"], "dtype": fast["dtype"],
                "grads": diff("grads"), "weights": diff("weights"), "moving": diff("moving"),
                "grad_size": max(float(np.max(np.abs(g))) for g in fast["grads"]), "moved": moved}

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({
        "function": compare(build=tiny, images=x, lam=1e-6),
        "erasing": compare(build=tiny, images=x, lam=1.0),
        "xla": compare(build=tiny, images=x, lam=1e-6, jit=True),
        "mirrored": compare(build=tiny, images=mixed, lam=0.2, strategy=mirrored),
        "mirrored_masks": kept_per_replica(mixed, 0.2),
    }))
""")


@pytest.mark.slow
def test_shortcut_equals_two_passes_in_float64_with_xla_and_mirrored():
    out = subprocess.run([sys.executable, "-c", _SHORTCUT_SCRIPT], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    first, second = results.pop("mirrored_masks")
    assert first == 1.0 and 0.0 < second < 1.0
    for name, result in results.items():
        assert result["dtype"] == "float64", name
        assert result["loss"][0] == pytest.approx(result["loss"][1], rel=1e-12, abs=1e-12), name
        assert result["grad_size"] > 1e-2 and result["moved"] > 1e-2, name  # not a comparison of zeros
        for key in ("grads", "weights", "moving"):
            assert result[key] < 1e-12, (name, key, result[key])
    assert results["function"]["kept"] == 1.0 and results["xla"]["kept"] == 1.0
    assert 0.0 < results["erasing"]["kept"] < 1.0
    # The metric averages both replicas' masks.
    assert results["mirrored"]["kept"] == pytest.approx((first + second) / 2, abs=1e-6)


@pytest.mark.parametrize("weight_clip, expected", [(False, 1.5 * (1 - 0.1 * 1e-2)), (True, 1.0)])
def test_latent_weight_beyond_one_keeps_its_value_unless_clipped(weight_clip, expected):
    """The reference does not clip: a latent weight at 1.5 gets no gradient
    through the straight-through estimator (zero beyond ±1) and keeps its
    value, less weight decay; Larq's weight_clip puts it back to 1.0."""
    from ir2net_tf.runs import cli, recipes, run

    settings = recipes.resolve("digits", {"image_size": SIZE, **({"weight_clip": True} if weight_clip else {})})
    assert "weight_clip" in cli.TRAINING_FLAGS and settings["weight_clip"] is weight_clip
    tf.keras.utils.set_random_seed(0)
    model = run.build_student(settings, 10, binary_weights=True)
    layer = model.get_layer("stage1_block1_1_bconv")
    kernel = layer.kernel.numpy()
    kernel.flat[0] = 1.5
    layer.kernel.assign(kernel)
    trainer = IR2Trainer(model, restriction_lambda=0.15, weight_decay=1e-2)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.1, momentum=0.9))
    trainer.train_step(_batch(8, 1))
    assert float(layer.kernel.numpy().flat[0]) == pytest.approx(expected, rel=1e-6)
    # Weights inside ±1 do move: the step did train.
    assert np.abs(layer.kernel.numpy().flat[1:] - kernel.flat[1:]).max() > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name, strided", [("IR2ResNet20", 2), ("IR2ResNet18CIFAR", 3), ("IR2VGGSmall", 0)])
def test_cifar_pytorch_padding_pads_strided_binary_convs_symmetrically(name, strided):
    from ir2net_tf.nn.layers import PyTorchPadQuantConv2D

    size = 8 if name == "IR2ResNet20" else 16
    same = zoo.build(name, input_shape=(size, size, 3))
    model = zoo.build(name, input_shape=(size, size, 3), padding="pytorch")
    assert sum(isinstance(layer, PyTorchPadQuantConv2D) for layer in model.layers) == strided
    assert [w.shape for w in model.weights] == [w.shape for w in same.weights]  # weights move freely
    if strided:
        model.set_weights(same.get_weights())
        x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32)
        assert np.abs(model(x).numpy() - same(x).numpy()).max() > 1e-4  # the padding does change the output


@pytest.mark.slow
def test_cifar_pytorch_padding_exports_every_binary_conv_as_lce_bconv():
    from ir2net_tf import deploy

    model = zoo.build("IR2ResNet20", input_shape=(SIZE, SIZE, 3), padding="pytorch")
    census = deploy.op_census(deploy.convert(model))
    assert census.get("LceBconv2d", 0) == deploy.keras_conv_counts(model)["binary_convs"] == 18


@pytest.mark.slow
def test_step_ratios_time_both_regimes():
    from test_train_step import tiny_binary_model

    from ir2net_tf.catalog.cli import build_parser
    from ir2net_tf.catalog.throughput import step_ratios

    result = step_ratios(tiny_binary_model(), erased=0.25, rounds=2, steps=1)
    assert result["kept"]["kept"] == 1.0
    assert result["erasing"]["kept"] == pytest.approx(0.75, abs=0.02)
    for regime in ("kept", "erasing"):
        ratio = result[regime]["ratio"]
        assert len(ratio["rounds"]) == 2 and 0 < ratio["q1"] <= ratio["median"] <= ratio["q3"]
    args = build_parser().parse_args(["step-benchmark", "--erased", "0.5", "--rounds", "3"])
    assert (args.model, args.batch_size, args.erased, args.rounds) == ("IR2ResNet18", 8, 0.5, 3)
