"""IR-Net in the zoo (docs/irnet.md): the Libra-PB and EDE quantizers against
an independent PyTorch implementation of the formulas, the models' sizes, the
EDE schedule through a killed and resumed run, and the LCE export."""

import json
import os

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import deploy, zoo
from ir2net_tf.nn import binarization
from ir2net_tf.nn.complexity import complexity
from ir2net_tf.runs import artifacts
from tests_support import SMALL, cli, kill_mid_epoch_and_resume

# The IR-Net table of arXiv:2210.02637's comparison, as the release builds them:
# (trainable parameters, binary kernel weights).
IRNET_SIZES = {
    "IRNetResNet20": (269_850, 267_264),
    "IRNetResNet18CIFAR": (11_174_986, 10_985_472),
    "IRNetVGGSmall": (4_660_106, 4_571_136),
    "IRNetResNet18": (11_690_536, 10_985_472),
    "IRNetResNet34": (21_798_696, 21_086_208),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(IRNET_SIZES))
def test_parameter_and_binary_weight_counts(name):
    model = zoo.build(name)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    stats = complexity(model)
    assert (trainable, stats.binary_params) == IRNET_SIZES[name]
    binary = [layer for layer in model.layers if isinstance(getattr(layer, "kernel_quantizer", None), binarization.LibraPB)]
    assert binary and all(isinstance(layer.input_quantizer, binarization.EDESign) for layer in binary)
    assert all(layer.kernel_constraint is None for layer in binary)  # IR-Net clips no weights
    tf.keras.backend.clear_session()


def _torch_conv(x, kernel, t, upstream):
    """Libra-PB + EDE convolution written from the formulas with PyTorch's autograd:
    output, d(output·upstream)/dx and /dkernel, in TensorFlow's layouts."""
    torch = pytest.importorskip("torch")
    k = max(1.0 / t, 1.0)

    class EDE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return torch.where(v >= 0, 1.0, -1.0)  # Larq's sign: sign(0) = +1

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            return grad * k * t * (1 - torch.tanh(t * v) ** 2)

    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    wt = torch.tensor(kernel.transpose(3, 2, 0, 1), requires_grad=True)
    rows = wt.reshape(wt.shape[0], -1)
    centred = rows - rows.mean(dim=1, keepdim=True)
    standardized = centred / centred.std(dim=1, keepdim=True)  # unbiased, as the release
    scale = (2.0 ** torch.round(torch.log2(standardized.abs().mean(dim=1, keepdim=True)))).detach()
    weights = (EDE.apply(standardized) * scale).reshape(wt.shape)
    y = torch.nn.functional.conv2d(EDE.apply(xt), weights, padding=1)
    (y * torch.tensor(upstream.transpose(0, 3, 1, 2))).sum().backward()
    return (y.detach().numpy().transpose(0, 2, 3, 1), xt.grad.numpy().transpose(0, 2, 3, 1),
            wt.grad.numpy().transpose(2, 3, 1, 0))


@pytest.mark.parametrize("t", [0.05, 3.0])
def test_libra_pb_ede_conv_matches_pytorch(t):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 5)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 5, 4)).astype(np.float32)
    kernel[..., 1] *= 0.01  # a channel of small weights: the standardization must undo it
    kernel[..., 2] += 3.0  # and one with a large mean
    kernel[0, 0, 0, 3] = 40.0  # a spike makes mean |ŵ| small: scale 1/2 or less
    upstream = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)

    layer = lq.layers.QuantConv2D(4, 3, padding="same", use_bias=False, kernel_quantizer="libra_pb",
                                  input_quantizer="ede_sign")
    model = tf.keras.Sequential([tf.keras.Input((6, 6, 5)), layer])
    layer.kernel.assign(kernel)
    assert binarization.set_ede_temperature(model, t) == 2
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = layer(inputs)
        loss = tf.reduce_sum(y * upstream)
    dx, dw = tape.gradient(loss, [inputs, layer.kernel])

    expected_y, expected_dx, expected_dw = _torch_conv(x, kernel, t, upstream)
    scales = binarization.libra_pb_scale(binarization.libra_pb_standardize(tf.constant(kernel))).numpy().ravel()
    assert scales[3] < 1.0 and scales[0] == 1.0
    for actual, expected in ((y, expected_y), (dx, expected_dx), (dw, expected_dw)):
        # float32 rounding differs between the two libraries' reductions
        np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    assert np.abs(dw.numpy()[..., 1]).max() > 10 * np.abs(dw.numpy()[..., 0]).max()  # 1/std through the standardization


@pytest.mark.slow
def test_schedule_and_temperature_state(tmp_path):
    assert binarization.ede_schedule(0, 400) == pytest.approx(1e-3)
    assert binarization.ede_schedule(300, 400) == pytest.approx(1.0)
    assert binarization.ede_schedule(400, 400) == pytest.approx(10.0)
    assert binarization.ede_k(0.01) == pytest.approx(100.0) and binarization.ede_k(2.0) == 1.0
    model = zoo.IRNetResNet20(input_shape=(8, 8, 3))
    assert binarization.set_ede_temperature(model, 0.25) == 36  # input and kernel quantizer of 18 convs
    binarization.EDESchedule(model, 4).on_epoch_begin(2)
    assert binarization.ede_temperature(model) == pytest.approx(binarization.ede_schedule(2, 4))
    with pytest.raises(ValueError, match="must be positive"):
        binarization.set_ede_temperature(model, 0.0)
    # Saved models load without custom_objects; t is checkpoint state, not a weight.
    path = str(tmp_path / "irnet.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert isinstance(loaded.get_layer("stage1_block1_1_bconv").kernel_quantizer, binarization.LibraPB)
    assert not any("temperature" in w.name for w in loaded.weights)
    assert binarization.ede_temperature(loaded) == pytest.approx(binarization.ede_schedule(2, 4))
    tf.keras.backend.clear_session()


@pytest.mark.slow
def test_ir2_builders_take_the_irnet_binarizer():
    bireal = zoo.IR2ResNet20()
    irnet = zoo.IR2ResNet20(binarizer="irnet")
    assert [w.shape for w in irnet.weights] == [w.shape for w in bireal.weights]
    assert binarization.uses_irnet(irnet) and not binarization.uses_irnet(bireal)
    assert sum(isinstance(layer.kernel_quantizer, binarization.LibraPB) for layer in irnet.layers
               if hasattr(layer, "kernel_quantizer")) == 18
    assert binarization.uses_irnet(zoo.IR2ResNet18(input_shape=(64, 64, 3), binarizer="irnet"))
    with pytest.raises(ValueError, match="binarizer must be one of"):
        zoo.IR2VGGSmall(binarizer="xnor")
    with pytest.raises(ValueError, match="binarizer='irnet'"):
        zoo.IRNetResNet20(recovery=True)
    tf.keras.backend.clear_session()


def test_deployable_folds_the_scales_into_batch_norm():
    """Scales other than 1 (spiky kernels), through a max pool: the ste_sign twin
    computes what the IR-Net model computes, in Keras and as an LCE flatbuffer."""
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, input_quantizer="ede_sign",
                              kernel_quantizer="libra_pb", pad_values=1.0, name="bconv")(x)
    x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))
    kernel = np.random.default_rng(3).standard_normal((3, 3, 8, 8)).astype(np.float32)
    kernel[0, 0, 0, ::2] = 60.0
    model.get_layer("bconv").kernel.assign(kernel)
    deploy.randomize_batch_norm(model, seed=1)
    scales = binarization.libra_pb_scale(binarization.libra_pb_standardize(tf.constant(kernel))).numpy().ravel()
    assert (scales[::2] < 1).all() and (scales[1::2] == 1).all()

    twin = binarization.deployable(model)
    assert type(twin.get_layer("bconv").kernel_quantizer).__name__ == "SteSign"
    assert not binarization.uses_irnet(twin) and binarization.uses_irnet(model)  # the original is unchanged
    images = deploy.random_inputs((8, 8, 3), 64)
    np.testing.assert_allclose(twin.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-4, atol=1e-4)
    flatbuffer = deploy.convert(model)
    census = deploy.check_census(deploy.op_census(flatbuffer), deploy.keras_conv_counts(model))
    assert census["ok"] and census["lce_bconv2d"] == 1
    assert deploy.parity(model, flatbuffer, images)["top1_agreement"] == 1.0
    # Without a batch norm to fold into, the scales cannot be exported as plain bconvs.
    bare = tf.keras.Model(inputs, model.get_layer("bconv").output)
    with pytest.raises(deploy.DeployError, match="bconv: its Libra-PB scales can only be folded"):
        deploy.convert(bare)
    tf.keras.backend.clear_session()


# Digits at 8×8: the last stage's maps are 2×2, where LCE's zero padding is
# wrong (deploy.zero_padding_hazards); one-padding is exact at every size.
IRNET_RUN = [*SMALL, "--model=IRNetResNet20", "--pad_values=1", "--checkpoint_every=4"]


@pytest.fixture(scope="module")
def irnet_run(tmp_path_factory):
    """An uninterrupted IRNetResNet20 digits run (2 epochs)."""
    model_dir = str(tmp_path_factory.mktemp("irnet") / "run")
    process = cli(*IRNET_RUN, f"--model_dir={model_dir}")
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return model_dir


def _temperatures(model_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2")))
    return sorted({float(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map() if "temperature" in name})


@pytest.mark.slow
def test_trained_irnet_exports_every_bconv_with_full_agreement(irnet_run, tmp_path, capsys):
    from ir2net_tf import data
    from ir2net_tf.export.cli import main

    config = json.load(open(os.path.join(irnet_run, artifacts.CONFIG)))
    assert config["training"]["restriction_lambda"] == 0.0 and config["recovery"] is False
    _, x_test, _, y_test = data.digits_arrays(8)
    held_out = str(tmp_path / "held_out.npz")
    np.savez(held_out, x=x_test, y=y_test)
    # Held-out digits only: random images through a 2-epoch network can sit
    # within float rounding of a sign flip (see deploy.DEFAULT_MIN_AGREEMENT).
    code = main(["--model-dir", irnet_run, "--images", held_out, "--latency-runs", "0", "--random-samples", "0"])
    capsys.readouterr()
    report = json.load(open(os.path.join(irnet_run, "model.json")))
    assert code == 0, report["failure"]
    assert report["census"]["lce_bconv2d"] == report["census"]["binary_convs_keras"] == 18
    assert report["census"]["float_conv_ops"] == 1  # the stem
    figures = report["parity"]["images"]
    assert figures["samples"] == len(y_test) and figures["top1_agreement"] == 1.0, figures
    assert figures["keras_accuracy"] > 0.15, figures  # chance: 0.1 (2 epochs at 8×8)
    ir2 = deploy.convert(zoo.IR2ResNet20(input_shape=(8, 8, 3), pad_values=1.0))
    assert report["size_bytes"] <= len(ir2)


@pytest.mark.slow
def test_killed_and_resumed_run_continues_the_ede_schedule(irnet_run, tmp_path):
    model_dir = str(tmp_path / "run")
    at_kill = []
    killed_at, _ = kill_mid_epoch_and_resume(
        [*IRNET_RUN, f"--model_dir={model_dir}"], os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2"),
        on_kill=lambda: at_kill.append(_temperatures(model_dir)),
    )
    # The checkpoint taken mid-epoch holds that epoch's t (for all 36 quantizers) ...
    assert at_kill == [[pytest.approx(binarization.ede_schedule(killed_at[0], 2))]] and killed_at[1] > 0
    # ... and the resumed run ends where the uninterrupted one does.
    assert _temperatures(model_dir) == _temperatures(irnet_run) == [pytest.approx(binarization.ede_schedule(1, 2))]


def test_irnet_recipes_and_the_step_schedule():
    from ir2net_tf.runs import recipes
    from ir2net_tf.training.schedules import make_schedule
    from ir2net_tf.training.trainer import make_optimizer

    demo = recipes.resolve(recipes.recipe_name(None, None, "IRNetResNet20"), {"model": "IRNetResNet20"})
    assert demo["recipe"] == "digits" and demo["restriction_lambda"] == 0.0 and demo["recovery"] is False
    assert recipes.resolve("digits", {"model": "IRNetResNet20", "restriction_lambda": 0.15})["restriction_lambda"] == 0.15
    assert (recipes.resolve("digits", {"model": "IR2ResNet20", "binarizer": "irnet"})["restriction_lambda"]
            == recipes.DIGITS_LAMBDA)
    assert recipes.recipe_name(None, "imagenet2012", "IRNetResNet18") == "irnet_imagenet"
    assert recipes.recipe_name(None, "imagenet2012", "IR2ResNet18") == "imagenet"
    assert recipes.recipe_name(None, "cifar10", "IRNetVGGSmall") == "irnet_cifar10"
    imagenet = recipes.resolve("irnet_imagenet", {})
    assert make_optimizer(imagenet["optimizer"], 0.1).nesterov
    # 1,000 steps, 4 % warm-up from 0.2 to 0.8, then ×0.1 at 30/60/90 %.
    schedule = make_schedule("step", imagenet["learning_rate"], 1000, warmup_steps=40,
                             warmup_learning_rate=imagenet["warmup_learning_rate"])
    values = [float(schedule(step)) for step in (0, 20, 40, 299, 300, 600, 900, 999)]
    assert values == pytest.approx([0.2, 0.5, 0.8, 0.8, 0.08, 0.008, 0.0008, 0.0008])
    with pytest.raises(ValueError, match="warm-up"):
        make_schedule("cosine", 0.1, 100, warmup_steps=5)


@pytest.mark.slow
def test_weights_of_the_other_binarizer_are_refused_naming_binarizer(tmp_path, capsys):
    """IR-Net weights exported with --binarizer bireal: refused, saying which --binarizer to pass."""
    from ir2net_tf.export import cli as export_cli

    path = str(tmp_path / "irnet.weights.h5")
    zoo.IRNetResNet20(input_shape=(8, 8, 3), num_classes=10, classifier_activation=None).save_weights(path)
    code = export_cli.main(["--model", "IRNetResNet20", "--weights", path, "--input-size", "8", "--num-classes",
                            "10", "--binarizer", "bireal", "-o", str(tmp_path / "m.tflite")])
    err = capsys.readouterr().err
    assert code == 2 and "--binarizer irnet" in err and "Nothing was loaded" in err, err
    assert not list(tmp_path.glob("*.tflite"))
