"""Grouped convolutions export as ordinary ones (deploy.grouped_as_convolutions),
and ir2net_tf.catalog.instructions counts executed instructions per inference with
valgrind (skipped where valgrind is not installed)."""

import numpy as np
import pytest

import larq as lq
import tensorflow as tf

from ir2net_tf import deploy
from ir2net_tf.catalog import instructions

GROUPS = 4

needs_valgrind = pytest.mark.skipif(
    not instructions.available(),
    reason="valgrind is not installed (Debian/Ubuntu: apt-get install valgrind); .ci/run installs it where it can")


SIZE, CHANNELS = 16, 64


def _grouped_model():
    """A binary convolution, then a nested model holding a grouped 3×3
    convolution with bias and batch norm, as CIRec's cheap convolution
    (large enough that one inference is millions of instructions)."""
    tf.keras.utils.set_random_seed(3)
    inner_input = tf.keras.Input((SIZE, SIZE, CHANNELS))
    y = tf.keras.layers.Conv2D(CHANNELS, 3, padding="same", groups=GROUPS, name="grouped")(inner_input)
    y = tf.keras.layers.BatchNormalization(name="grouped_bn")(y)
    inner = tf.keras.Model(inner_input, tf.keras.layers.PReLU(name="grouped_act")(y), name="inner")
    x = tf.keras.Input((SIZE, SIZE, 3))
    h = tf.keras.layers.Conv2D(CHANNELS, 3, padding="same", name="stem")(x)
    h = lq.layers.QuantConv2D(CHANNELS, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                              kernel_quantizer="ste_sign", use_bias=False, name="bconv")(h)
    h = tf.keras.layers.GlobalAveragePooling2D()(inner(h))
    model = tf.keras.Model(x, tf.keras.layers.Dense(10, name="logits")(h))
    deploy.randomize_batch_norm(model, seed=3)
    return model


@pytest.fixture(scope="module")
def grouped():
    model = _grouped_model()
    return model, deploy.convert(model)


@pytest.mark.slow
def test_the_export_twin_computes_the_same_with_ordinary_convolutions(grouped):
    model, _ = grouped
    twin = deploy.grouped_as_convolutions(model)
    layer = twin.get_layer("inner").get_layer("grouped")
    assert isinstance(layer, deploy.GroupsAsConvolutions) and layer.groups == GROUPS
    np.testing.assert_array_equal(layer.kernel.numpy(), model.get_layer("inner").get_layer("grouped").kernel.numpy())
    # The trained model keeps its grouped layer.
    assert type(model.get_layer("inner").get_layer("grouped")) is tf.keras.layers.Conv2D
    x = deploy.random_inputs((SIZE, SIZE, 3), 4)
    np.testing.assert_allclose(twin(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    ungrouped = tf.keras.Model(model.inputs, model.get_layer("bconv").output)
    assert deploy.grouped_as_convolutions(ungrouped) is ungrouped  # nothing to rewrite: no copy


def test_grouped_convolution_exports_as_one_conv_per_group_and_verifies(grouped):
    model, flatbuffer = grouped
    census = deploy.op_census(flatbuffer)
    # stem + one CONV_2D per group; one SPLIT of the input channels.
    assert census["CONV_2D"] == 1 + GROUPS and census["SPLIT"] == 1 and census["LceBconv2d"] == 1
    assert deploy.keras_conv_counts(model) == {"binary_convs": 1, "float_convs": 1 + GROUPS}
    assert deploy.check_census(census, deploy.keras_conv_counts(model))["ok"]
    figures = deploy.parity(model, flatbuffer, deploy.random_inputs((SIZE, SIZE, 3), 16))
    assert figures["top1_agreement"] == 1.0 and figures["close_fraction"] == 1.0, figures


@pytest.mark.slow
@needs_valgrind
def test_instruction_count_finds_the_split_form_cheaper(grouped, tmp_path):
    import larq_compute_engine as lce

    model, split = grouped
    grouped_flatbuffer = lce.convert_keras_model(model)  # the grouped CONV_2D, as without the rewrite
    assert deploy.op_census(grouped_flatbuffer)["CONV_2D"] == 2
    counts = {}
    for name, flatbuffer in (("split", split), ("grouped", grouped_flatbuffer)):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(flatbuffer)
        counts[name] = instructions.per_inference(str(path))
    print(counts)
    # At least the grouped convolution's multiply-adds, 16 to an instruction
    # (the widest SIMD on x86): the start-up cancelled, not the inference.
    assert counts["split"] > SIZE * SIZE * 9 * CHANNELS * (CHANNELS // GROUPS) / 16
    assert counts["split"] < counts["grouped"]


def test_a_missing_valgrind_is_said_plainly(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not instructions.available() and instructions.per_inference_or_none(b"TFL3") is None
    with pytest.raises(instructions.InstructionCountError, match="valgrind is not installed"):
        instructions.per_inference(str(tmp_path / "model.tflite"))
