"""ir2net_tf.deploy: every zoo model converts to LCE with one LceBconv2d per
binary convolution and computes what the Keras model computes."""

import os
import time

import numpy as np
import pytest

import larq as lq
import tensorflow as tf

from ir2net_tf import deploy, zoo
from ir2net_tf._util.files import OutputError

# (model, input size, variant, binary convolutions). The ImageNet models run
# at 224 once (IR2ResNet18) and smaller elsewhere to keep the suite fast; 96
# is the smallest size whose last stage (3×3) LCE zero-pads correctly.
ZOO_CASES = [
    ("IR2ResNet18", 224, "A", 16),
    ("IR2ResNet34", 96, "D", 32),
    ("IR2ResNet20", 32, None, 18),
    ("IR2ResNet18CIFAR", 32, None, 16),
    ("IR2VGGSmall", 32, None, 5),
]


def _zoo_model(name, size, variant, seed=1):
    # Random weights, but the same ones every run: how many random inputs
    # land near a sign flip depends on them.
    tf.keras.utils.set_random_seed(seed)
    model = zoo.build(name, input_shape=(size, size, 3), variant=variant, classifier_activation=None)
    deploy.randomize_batch_norm(model, seed=1)
    return model


@pytest.fixture(scope="module")
def vgg():
    model = _zoo_model("IR2VGGSmall", 32, None)
    return model, deploy.convert(model)


@pytest.mark.slow
@pytest.mark.parametrize("name,size,variant,binary", ZOO_CASES, ids=[c[0] for c in ZOO_CASES])
def test_zoo_model_exports_and_verifies(name, size, variant, binary, vgg):
    model, flatbuffer = vgg if name == "IR2VGGSmall" else (None, None)
    if flatbuffer is None:
        model = _zoo_model(name, size, variant)
        start = time.perf_counter()
        flatbuffer = deploy.convert(model)
        print(f"{name} at {size}: converted in {time.perf_counter() - start:.1f} s")
    counts = deploy.keras_conv_counts(model)
    assert counts["binary_convs"] == binary
    census = deploy.check_census(deploy.op_census(flatbuffer), counts)
    assert census["problems"] == [] and census["ok"]
    assert census["lce_bconv2d"] == binary
    # One binarization per binary convolution's input (none is fused away
    # here: every bconv's input is a float sum or activation).
    assert census["binarize_ops"]["LceQuantize"] == binary
    assert census["int8_ops"] == {"QUANTIZE": 0, "DEQUANTIZE": 0}
    figures = deploy.parity(model, flatbuffer, deploy.random_inputs((size, size, 3), 32))
    # Not a bound on max_abs_diff: activations within rounding of zero may
    # binarize the other way (see deploy.DEFAULT_MIN_AGREEMENT); most inputs
    # must still come out the same up to rounding.
    assert figures["top1_agreement"] >= deploy.RANDOM_WEIGHTS_MIN_AGREEMENT, figures
    assert figures["close_fraction"] >= 0.5, figures


def test_parity_catches_a_model_that_computes_something_else(vgg):
    model, flatbuffer = vgg
    other = _zoo_model("IR2VGGSmall", 32, None, seed=2)  # same architecture, other weights
    figures = deploy.parity(other, flatbuffer, deploy.random_inputs((32, 32, 3), 48))
    assert figures["top1_agreement"] < deploy.RANDOM_WEIGHTS_MIN_AGREEMENT
    assert figures["close_fraction"] == 0.0 and figures["max_abs_diff"] > 1e-2


def _binary_conv_model(size=8, **overrides):
    x = tf.keras.Input((size, size, 16))
    args = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                padding="same", use_bias=False)
    args.update(overrides)
    return tf.keras.Model(x, lq.layers.QuantConv2D(16, 3, **args)(x))


@pytest.mark.parametrize("overrides", [dict(pad_values=0.5), dict(groups=2)], ids=["pad_half", "groups_of_8"])
def test_census_flags_binary_conv_converted_to_float(overrides):
    # LCE binarizes only with 0/1 padding and groups of 32k channels; other
    # binary convolutions silently become float CONV_2D ops.
    model = _binary_conv_model(**overrides)
    census = deploy.check_census(deploy.op_census(deploy.convert(model)), deploy.keras_conv_counts(model))
    assert not census["ok"]
    assert census["lce_bconv2d"] == 0 and census["float_conv_ops"] == 1
    assert any("converted to a float one" in p for p in census["problems"])


def test_layer_lce_cannot_convert_is_an_error():
    x = tf.keras.Input((4, 4, 3))
    y = tf.keras.layers.Lambda(lambda t: tf.numpy_function(np.sort, [t], tf.float32), name="python_sort")(x)
    with pytest.raises(deploy.DeployError, match=r"PyFunc.*'python_sort' \(Lambda\)"):
        deploy.convert(tf.keras.Model(x, y))


def test_int8_io_needs_a_quantized_model():
    with pytest.raises(deploy.DeployError, match="--int8-range"):
        deploy.convert(_binary_conv_model(), input_type="int8")


def test_int8_io_with_dummy_quantization():
    model = _binary_conv_model()
    flatbuffer = deploy.convert(model, input_type="int8", output_type="int8", int8_range=(-4.0, 4.0))
    census = deploy.check_census(deploy.op_census(flatbuffer), deploy.keras_conv_counts(model))
    assert census["ok"] and census["lce_bconv2d"] == 1
    interpreter = deploy.load_interpreter(flatbuffer)
    # (LCE leaves this model's output float: the bconv writes it directly.)
    assert interpreter.input_types == [np.dtype("int8")]
    x = deploy.random_inputs((8, 8, 16), 4)
    y = deploy.run_flatbuffer(flatbuffer, x)
    assert y.shape == (4, 8, 8, 16) and y.dtype == np.float32


def test_op_census_rejects_other_files():
    with pytest.raises(deploy.DeployError, match="TFL3"):
        deploy.op_census(b"\0" * 64)


def test_latency_reports_each_kernel_and_thread_count(vgg):
    rows = deploy.measure_latency(vgg[1], kernels=("default", "indirect_bgemm"), threads=(1, 2), runs=3, warmup=1)
    assert [(r["kernel"], r["threads"]) for r in rows] == [
        ("default", 1), ("default", 2), ("indirect_bgemm", 1), ("indirect_bgemm", 2)
    ]
    assert all(0 < r["min_ms"] <= r["median_ms"] and r["runs"] == 3 for r in rows)


def test_randomize_batch_norm_changes_only_batch_norm():
    model = zoo.build("IR2VGGSmall", classifier_activation=None)
    before = {w.name: w.numpy() for w in model.weights}
    deploy.randomize_batch_norm(model, seed=3)
    for w in model.weights:
        changed = not np.array_equal(before[w.name], w.numpy())
        assert changed == ("_bn/" in w.name), w.name


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "model.tflite"
    deploy.atomic_write(str(target), b"first")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError, match="disk full.*Nothing there was changed"):  # one line, not a traceback
        deploy.atomic_write(str(target), b"second")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


def test_check_writable(tmp_path):
    with pytest.raises(deploy.DeployError, match="does not exist"):
        deploy.check_writable(str(tmp_path / "missing" / "m.tflite"))
    with pytest.raises(deploy.DeployError, match="is a directory"):
        deploy.check_writable(str(tmp_path))
    deploy.check_writable(str(tmp_path / "m.tflite"))
    assert list(tmp_path.iterdir()) == []


def test_xcore_target_binarizes_for_the_xcore_tool_chain():
    # For xcore LCE emits no LceBconv2d: the binary convolution stays a
    # CONV_2D on an LceQuantize -> LceDequantize input, which XMOS's tools map.
    model = _binary_conv_model()
    flatbuffer = deploy.convert(model, target="xcore")
    census = deploy.check_census(deploy.op_census(flatbuffer), deploy.keras_conv_counts(model), target="xcore")
    assert census["ok"], census
    assert census["binarize_ops"] == {"LceQuantize": 1, "LceDequantize": 1} and census["lce_bconv2d"] == 0
    assert not deploy.check_census(deploy.op_census(flatbuffer), deploy.keras_conv_counts(model))["ok"]
    x = deploy.random_inputs((8, 8, 16), 8)
    assert deploy.parity(model, flatbuffer, x)["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("size,pad,dilation,hazard", [
    (2, 0.0, 1, True), (2, 1.0, 1, False), (3, 0.0, 1, False),
    # Dilated by 2 the kernel reaches 5 pixels (BinaryDenseNet37Dilated).
    (4, 0.0, 2, True), (4, 1.0, 2, False), (5, 0.0, 2, False),
])
def test_lce_zero_padding_on_maps_smaller_than_the_kernel(size, pad, dilation, hazard):
    # LCE 0.16 computes a zero-padded binary convolution wrongly when the map
    # is smaller than the kernel's reach; the parity check catches it and
    # zero_padding_hazards names the layer ahead of time.
    small = _binary_conv_model(size, pad_values=pad, dilation_rate=dilation)
    figures = deploy.parity(small, deploy.convert(small), deploy.random_inputs((size, size, 16), 8))
    assert (figures["close_fraction"] == 0.0 if hazard else figures["close_fraction"] == 1.0), figures
    assert bool(deploy.zero_padding_hazards(small)) == hazard
