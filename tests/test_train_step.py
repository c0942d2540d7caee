"""The IR² training step: loss, gradients, batch-norm updates, distillation,
weight decay, distribution and XLA."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import zoo
from ir2net_tf.nn.restriction import restrict, restriction_mask
from ir2net_tf.training.trainer import IR2Trainer, cross_entropy, decayed_variables, distillation, with_feature_map

SIZE = 8  # IR2ResNet20's smallest input: F is 2×2
# λ = 1 erases every pixel below the mean attention: on random tiny inputs
# λ = 0.15 often keeps them all, which would hide a second pass that is wrong.
LAM = 1.0


def student(binary_weights=True, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return zoo.build("IR2ResNet20", input_shape=(SIZE, SIZE, 3), classifier_activation=None,
                     binary_weights=binary_weights)


def batch(n=8, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32)
    # Bright blobs make the attention uneven, so the mask erases something.
    x[:, : SIZE // 2, : SIZE // 2] += 3.0
    return tf.constant(x), tf.constant(rng.integers(0, 10, size=n), tf.int32)


def reference_passes(model, x, y):
    """The two passes written out by hand: mask from pass 1's F."""
    with_f = with_feature_map(model)
    logits, features = with_f(x, training=True)
    mask = restriction_mask(features, x, LAM)
    restricted_logits, _ = with_f(restrict(x, mask), training=True)
    return tf.reduce_mean(cross_entropy(y, logits)), tf.reduce_mean(cross_entropy(y, restricted_logits)), mask


def test_loss_is_mean_of_both_passes_and_gradients_flow_from_both():
    model = student()
    x, y = batch()
    trainer = IR2Trainer(model, restriction_lambda=LAM)
    plain = IR2Trainer(model, restriction_lambda=0.0)
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        loss, _ = trainer.ir2_loss(x, y, None)
        plain_loss, _ = plain.ir2_loss(x, y, None)
        first, second, mask = reference_passes(model, x, y)
    m = mask.numpy()
    assert 0 < m.mean() < 1, "the mask should erase some pixels and keep others"
    assert abs(float(first) - float(second)) > 1e-4
    np.testing.assert_allclose(float(loss), (float(first) + float(second)) / 2, rtol=1e-5)
    # Restriction off is exactly the first pass alone.
    np.testing.assert_allclose(float(plain_loss), float(first), rtol=1e-6)
    grads = tape.gradient(loss, variables)
    grads_first = tape.gradient(first, variables)
    grads_second = tape.gradient(second, variables)
    for g, g1, g2 in zip(grads, grads_first, grads_second):
        np.testing.assert_allclose(g.numpy(), (g1.numpy() + g2.numpy()) / 2, atol=1e-5, rtol=1e-4)
    differs = [np.abs(g1.numpy() - g2.numpy()).max() for g1, g2 in zip(grads_first, grads_second)]
    assert max(differs) > 1e-4 and min(np.abs(g.numpy()).max() for g in grads_second) >= 0
    assert sum(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads_second) > len(variables) // 2


def test_train_step_updates_batch_norm_with_both_passes_and_metrics_on_x():
    model = student()
    x, y = batch()
    initial = model.get_weights()
    trainer = IR2Trainer(model, restriction_lambda=LAM)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.0))
    logs = {k: float(v) for k, v in trainer.train_step((x, y)).items()}
    after_step = model.get_weights()

    model.set_weights(initial)
    first, second, _ = reference_passes(model, x, y)  # updates the moving statistics twice
    expected = model.get_weights()
    for a, b in zip(after_step, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    moved = sum(not np.allclose(a, b) for a, b in zip(initial, expected))
    assert moved > 0
    np.testing.assert_allclose(logs["loss"], (float(first) + float(second)) / 2, rtol=1e-5)

    # The accuracy metric reads the output on x, not on x'.
    model.set_weights(initial)
    logits = model(x, training=True)
    expected_accuracy = float(np.mean(np.argmax(logits.numpy(), -1) == y.numpy()))
    assert logs["accuracy"] == pytest.approx(expected_accuracy)


def test_restriction_off_updates_batch_norm_once():
    model = student()
    x, y = batch()
    initial = model.get_weights()
    trainer = IR2Trainer(model, restriction_lambda=0.0)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.0))
    trainer.train_step((x, y))
    after = model.get_weights()
    model.set_weights(initial)
    model(x, training=True)
    for a, b in zip(after, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_distillation_loss_and_teacher_in_inference_mode():
    probabilities = tf.constant([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    logits = tf.constant([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    expected = -np.sum(probabilities.numpy() * tf.nn.log_softmax(logits).numpy(), axis=-1)
    np.testing.assert_allclose(distillation(probabilities, logits).numpy(), expected, rtol=1e-6)

    model = student()
    x, y = batch()
    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input((SIZE, SIZE, 3))
    hidden = tf.keras.layers.BatchNormalization()(tf.keras.layers.GlobalAveragePooling2D()(inputs))
    teacher = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(tf.keras.layers.Dropout(0.9)(hidden)))
    teacher_weights = teacher.get_weights()
    trainer = IR2Trainer(model, teacher=teacher, restriction_lambda=LAM)
    targets = trainer.teacher_targets(x)
    np.testing.assert_allclose(targets.numpy(), tf.nn.softmax(teacher(x, training=False)).numpy(), rtol=1e-6)
    loss, _ = trainer.ir2_loss(x, y, targets)
    with_f = with_feature_map(model)
    logits, features = with_f(x, training=True)
    restricted, _ = with_f(restrict(x, restriction_mask(features, x, LAM)), training=True)
    expected = (tf.reduce_mean(distillation(targets, logits)) + tf.reduce_mean(distillation(targets, restricted))) / 2
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    trainer.train_step((x, y))
    for a, b in zip(teacher_weights, teacher.get_weights()):  # no BN update, no training
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_weight_decay_is_l2_in_the_gradient_on_conv_kernels_only():
    x, y = batch()
    deltas = []
    for decay in (0.0, 0.1):
        model = student(binary_weights=False)
        before = [v.numpy() for v in model.trainable_variables]
        trainer = IR2Trainer(model, weight_decay=decay, weight_decay_scope="conv")
        trainer.compile(optimizer=tf.keras.optimizers.SGD(0.5, momentum=0.0))
        trainer.train_step((x, y))
        deltas.append([v.numpy() - b for v, b in zip(model.trainable_variables, before)])
    model = student(binary_weights=False)
    conv = {id(v) for v in decayed_variables(model, "conv")}
    assert conv and len(conv) < len(model.trainable_variables)
    for v, plain, decayed in zip(model.trainable_variables, *deltas):
        expected = -0.5 * 0.1 * v.numpy() if id(v) in conv else 0.0
        np.testing.assert_allclose(decayed - plain, expected, atol=2e-5)


@pytest.mark.slow
def test_mirrored_strategy_matches_one_device():
    """Two logical CPUs (in a fresh process, before TensorFlow initializes).
    Each replica gets the same half batch as a one-device run's duplicated
    batch, so batch statistics, the first step's loss and the updated weights
    must agree (moving variances differ by Bessel's n/(n−1) with n halved,
    so they are left out)."""
    script = textwrap.dedent(f"""
        import ir2net_tf, json, numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from ir2net_tf import zoo
        from ir2net_tf.training.trainer import IR2Trainer
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4, {SIZE}, {SIZE}, 3)).astype(np.float32); x[:, :4, :4] += 3
        y = rng.integers(0, 10, size=4).astype(np.int32)
        data = tf.data.Dataset.from_tensor_slices((np.concatenate([x, x]), np.concatenate([y, y]))).batch(8)
        def run(strategy):
            with strategy.scope():
                tf.keras.utils.set_random_seed(0)
                model = zoo.build("IR2ResNet20", input_shape=({SIZE}, {SIZE}, 3), classifier_activation=None)
                trainer = IR2Trainer(model, restriction_lambda={LAM}, weight_decay=1e-3)
                trainer.compile(optimizer=tf.keras.optimizers.SGD(0.1))
            batch = next(iter(strategy.experimental_distribute_dataset(data)))
            logs = strategy.run(trainer.train_step, args=(batch,))
            loss = strategy.reduce("MEAN", logs["loss"], axis=None)
            kept = [w.numpy() for w in model.weights if "moving_variance" not in w.name]
            return float(loss), kept, strategy.num_replicas_in_sync
        one = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
        two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one[1], two[1]))
        print(json.dumps({{"one": one[0], "two": two[0], "replicas": two[2], "max_diff": diff}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["two"] == pytest.approx(result["one"], rel=1e-5)
    assert result["max_diff"] < 1e-3


def tiny_binary_model():
    """A small binary network with the zoo's F layer: XLA compiles it in
    seconds, where IR2ResNet20 takes minutes on a CPU."""
    import larq as lq

    from ir2net_tf.zoo import FEATURES_LAYER

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((SIZE, SIZE, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, input_quantizer="approx_sign",
                              kernel_quantizer="ste_sign", kernel_constraint="weight_clip")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Activation("linear", name=FEATURES_LAYER)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))


@pytest.mark.slow
def test_jit_compiled_step_matches_eager():
    x, y = batch()
    losses, weights = [], []
    for jit in (False, True):
        model = tiny_binary_model()
        trainer = IR2Trainer(model, restriction_lambda=LAM, weight_decay=1e-3)
        trainer.compile(optimizer=tf.keras.optimizers.SGD(0.1), jit_compile=jit)
        # jit: Keras's XLA-compiled train function; otherwise the step run eagerly.
        logs = trainer.train_on_batch(x, y, return_dict=True) if jit else trainer.train_step((x, y))
        losses.append(float(logs["loss"]))
        weights.append(model.get_weights())
    assert np.isfinite(losses[1])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
